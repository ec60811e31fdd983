"""Check a config's learning-rate schedule against the published recipe, without a GPU.

The official Swin recipes were written for mmcv's ``lr_config`` hooks; their mmengine
translations (``param_scheduler``) are easy to get subtly wrong: a warmup that ends one
step early, a poly decay that starts after the warmup. This steps the config's real
mmengine schedulers through the whole run, as ``ParamSchedulerHook`` does, and compares
every iteration's learning rate with the published formula, written here independently
of the configs. Each config names the formula it reproduces in a top-level
``schedule_recipe`` field (set by the schedule bases in configs/_base_/schedules/).
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, DefaultScope

# COCO train2017 after filter_empty_gt (117,266 images) at batch 16.
COCO_ITERS_PER_EPOCH = 7330


@dataclass(frozen=True)
class StepRecipe:
    """mmcv ``policy='step'`` with linear warmup by iteration (the detection recipes)."""
    base_lr: float
    warmup_iters: int
    warmup_ratio: float
    epochs: int
    milestones: Tuple[int, ...]
    gamma: float

    def lrs(self, iters_per_epoch: int) -> np.ndarray:
        t = np.arange(self.epochs * iters_per_epoch)
        epoch = t // iters_per_epoch
        decays = sum((epoch >= m).astype(int) for m in self.milestones)
        regular = self.base_lr * self.gamma ** decays
        return regular * _linear_warmup(t, self.warmup_iters, self.warmup_ratio)


@dataclass(frozen=True)
class PolyRecipe:
    """mmcv ``policy='poly'`` by iteration with linear warmup (the ADE20K recipes)."""
    base_lr: float
    warmup_iters: int
    warmup_ratio: float
    max_iters: int
    power: float
    min_lr: float

    def lrs(self, iters_per_epoch: Optional[int] = None) -> np.ndarray:
        """Per-iteration rates; `iters_per_epoch` is accepted for the same call as
        StepRecipe's, and not needed: this recipe counts iterations."""
        t = np.arange(self.max_iters)
        regular = (self.base_lr - self.min_lr) * (1 - t / self.max_iters) ** self.power
        regular += self.min_lr
        return regular * _linear_warmup(t, self.warmup_iters, self.warmup_ratio)


def _linear_warmup(t: np.ndarray, warmup_iters: int, ratio: float) -> np.ndarray:
    """mmcv's linear warmup factor: ratio at t=0, rising linearly, 1 from warmup_iters."""
    return np.where(t < warmup_iters, 1 - (1 - t / warmup_iters) * (1 - ratio), 1.0)


PUBLISHED: Dict[str, object] = {
    # SwinTransformer/Swin-Transformer-Object-Detection@c7b2011: lr_config step [27, 33],
    # warmup 500 x 0.001 (inherited from schedule_1x), AdamW lr 1e-4, max_epochs 36.
    'coco-3x': StepRecipe(1e-4, 500, 0.001, 36, (27, 33), 0.1),
    # The same repository's Mask R-CNN Swin-T 1x: lr_config step [8, 11], max_epochs 12,
    # warmup and optimizer as coco-3x.
    'coco-1x': StepRecipe(1e-4, 500, 0.001, 12, (8, 11), 0.1),
    # Swin paper (arXiv 2103.14030) appendix A2.2, HTC++ "6x": 72 epochs, x0.1 at 63
    # and 69; learning rate and warmup as coco-3x (the paper gives none for HTC++).
    'coco-6x': StepRecipe(1e-4, 500, 0.001, 72, (63, 69), 0.1),
    # SwinTransformer/Swin-Transformer-Semantic-Segmentation@87e6f90: poly power 1,
    # min_lr 0, warmup 1500 x 1e-6, AdamW lr 6e-5, 160k iterations.
    'ade20k-160k': PolyRecipe(6e-5, 1500, 1e-6, 160000, 1.0, 0.0),
    # Swin V2 paper (arXiv 2111.09883v2) A2.1, HTC++ SwinV2-L: AdamW lr 4e-4 (batch 64),
    # 3x; the paper gives no warmup, so coco-3x's (500 x 0.001).
    'swinv2-htcpp-3x': StepRecipe(4e-4, 500, 0.001, 36, (27, 33), 0.1),
    # The same appendix, UPerNet SwinV2-L: lr 6e-5, linear decay, 375-iteration warmup,
    # 40K iterations; warmup start 1e-6 as ade20k-160k (the paper gives none).
    'swinv2-ade20k-40k': PolyRecipe(6e-5, 375, 1e-6, 40000, 1.0, 0.0),
}

# The top-level config field that names the published schedule a config reproduces.
# The schedule bases set it, so every config inherits the name with its schedulers; a
# config that changes its schedule sets it to None (or to the recipe it now follows).
RECIPE_FIELD = 'schedule_recipe'


@dataclass
class ScheduleReport:
    recipe: str
    iterations: int
    max_rel_error: float
    worst_iteration: int
    config_lr: float
    published_lr: float

    def ok(self, rtol: float) -> bool:
        return self.max_rel_error <= rtol


class _Dummy(nn.Module):
    """Parameters named like the backbone's, so paramwise_cfg builds several groups."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.norm = nn.LayerNorm(2)


def config_lrs(cfg, iters_per_epoch: int) -> np.ndarray:
    """Learning rate of every training iteration of ``cfg``, from its real schedulers."""
    # The base rate's schedule: a constructor's per-layer multipliers (layer-wise decay,
    # a backbone factor) need a real backbone and are checked with it elsewhere.
    optim_cfg = cfg.optim_wrapper.copy()
    if optim_cfg.pop('constructor', None) is not None:
        optim_cfg.pop('paramwise_cfg', None)  # that constructor's options
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        optim_wrapper = build_optim_wrapper(_Dummy(), optim_cfg)
        schedulers = []
        for scheduler_cfg in cfg.param_scheduler:
            default_args = dict(optimizer=optim_wrapper)
            if scheduler_cfg.get('convert_to_iter_based', False):
                default_args['epoch_length'] = iters_per_epoch
            schedulers.append(PARAM_SCHEDULERS.build(scheduler_cfg, default_args=default_args))
    train_cfg = cfg.train_cfg
    if 'max_epochs' in train_cfg:
        epochs, epoch_length = train_cfg.max_epochs, iters_per_epoch
    else:
        epochs, epoch_length = 1, train_cfg.max_iters
    by_iter = [s for s in schedulers if not s.by_epoch]
    by_epoch = [s for s in schedulers if s.by_epoch]
    groups = optim_wrapper.param_groups
    lrs = np.empty(epochs * epoch_length)
    optim_wrapper.optimizer.step()  # schedulers expect a step before theirs
    i = 0
    for _ in range(epochs):
        for _ in range(epoch_length):
            values = {group['lr'] for group in groups}
            if len(values) != 1:
                raise ValueError(f'expected one learning rate for all parameter groups, '
                                 f'found {sorted(values)} at iteration {i}')
            lrs[i] = values.pop()
            for scheduler in by_iter:  # ParamSchedulerHook.after_train_iter
                scheduler.step()
            i += 1
        for scheduler in by_epoch:  # ParamSchedulerHook.after_train_epoch
            scheduler.step()
    return lrs


def check_schedule(cfg, recipe: Optional[str] = None,
                   iters_per_epoch: int = COCO_ITERS_PER_EPOCH) -> ScheduleReport:
    """Compare every iteration's learning rate of ``cfg`` with the published ``recipe``.

    Without ``recipe``, the one the config names in its ``schedule_recipe`` field.
    """
    recipe = recipe_of(cfg) if recipe is None else recipe
    if recipe not in PUBLISHED:
        raise ValueError(f'unknown recipe {recipe!r}; expected one of {sorted(PUBLISHED)}')
    published = PUBLISHED[recipe].lrs(iters_per_epoch)
    ours = config_lrs(cfg, iters_per_epoch)
    if len(ours) != len(published):
        raise ValueError(f'run length differs from recipe {recipe!r}: the config trains '
                         f'{len(ours)} iterations, the recipe {len(published)} '
                         f'({iters_per_epoch} iterations per epoch for epoch-based runs)')
    rel = np.abs(ours - published) / np.maximum(np.abs(published), np.finfo(float).tiny)
    worst = int(np.argmax(rel))
    return ScheduleReport(recipe, len(ours), float(rel[worst]), worst,
                          float(ours[worst]), float(published[worst]))


def recipe_of(cfg) -> str:
    """The published recipe ``cfg`` names in its ``schedule_recipe`` field."""
    name = cfg.get(RECIPE_FIELD)
    if name is None:
        raise ValueError(f'{cfg.filename} names no published schedule ({RECIPE_FIELD} is '
                         f'unset or None); expected one of {sorted(PUBLISHED)}')
    if name not in PUBLISHED:
        raise ValueError(f'{cfg.filename}: {RECIPE_FIELD}={name!r} is not a published '
                         f'recipe; expected one of {sorted(PUBLISHED)}')
    return name


__all__ = ['COCO_ITERS_PER_EPOCH', 'PUBLISHED', 'RECIPE_FIELD', 'PolyRecipe', 'StepRecipe',
           'ScheduleReport', 'check_schedule', 'config_lrs', 'recipe_of']
