"""From a config file and command-line choices to a ready mmengine Runner, GPU or not.

tools/train.py and tools/test.py share this, so a config written for 8 CUDA GPUs (nccl,
SyncBN) also runs unchanged in CPU processes: without CUDA the process group uses gloo
and SyncBN becomes BN, and every such change is written to the run's log.
"""
import argparse
import contextlib
import datetime
import gc
import os
import os.path as osp
from typing import List, Optional

import numpy as np
import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from .checkpoint_io import mmengine_safe_globals


def tool_parser(description: str) -> argparse.ArgumentParser:
    """Arguments shared by tools/train.py and tools/test.py (the config comes first)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_tool_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    set_local_rank(args.local_rank)
    return args


def load_config(path: str, work_dir: Optional[str] = None, cfg_options: Optional[dict] = None,
                launcher: str = 'none') -> Config:
    """The config with command-line overrides; work_dir defaults to work_dirs/<config name>."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'expected a config file, found nothing at {path}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def use_tta(cfg: Config) -> None:
    """Test with the config's ``tta_model`` wrapping its model and its ``tta_pipeline``."""
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise KeyError(f'--tta expects tta_model and tta_pipeline in the config, '
                       f'found no {" and no ".join(missing)}')
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:  # wrappers such as RepeatDataset
        dataset = dataset.dataset
    dataset.pipeline = cfg.tta_pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)


def fit_to_machine(cfg: Config) -> List[str]:
    """Adapt a CUDA config to CPU processes when CUDA is absent; return what was changed.

    gloo replaces nccl; SyncBN (CUDA-only in torch) becomes BN, i.e. per-process batch
    statistics; DDP wraps CPU modules, which must not be given device ids.
    """
    if torch.cuda.is_available():
        return []
    changes = []
    dist_cfg = cfg.setdefault('env_cfg', ConfigDict()).setdefault('dist_cfg', ConfigDict())
    if cfg.launcher != 'none' and dist_cfg.get('backend', 'nccl') != 'gloo':
        changes.append(f'no CUDA: distributed backend {dist_cfg.get("backend", "nccl")} -> gloo')
        dist_cfg.backend = 'gloo'
    count = _replace_sync_bn(cfg.model)
    if count:
        changes.append(f'no CUDA: {count} SyncBN norm_cfg(s) -> BN (SyncBN needs CUDA; '
                       'batch statistics are per process)')
    if cfg.launcher != 'none':
        wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
        wrapper.device_ids = None
        cfg.model_wrapper_cfg = wrapper
    return changes


def _replace_sync_bn(node) -> int:
    count = 0
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        count += sum(_replace_sync_bn(item) for item in node)
    return count


def init_cpu_process_group(cfg: Config) -> None:
    """Join the torchrun process group with gloo before the Runner does.

    mmengine's pytorch launcher calls ``torch.cuda.set_device`` unconditionally, which
    fails without CUDA; the Runner skips its own initialisation when a group exists.
    """
    if cfg.launcher == 'none' or torch.cuda.is_available() or dist.is_initialized():
        return
    if cfg.launcher != 'pytorch':
        raise ValueError(f'expected --launcher pytorch or none on a machine without CUDA, '
                         f'got {cfg.launcher}')
    timeout = cfg.env_cfg.dist_cfg.get('timeout', 1800)
    dist.init_process_group(backend='gloo', timeout=datetime.timedelta(seconds=timeout))


@contextlib.contextmanager
def process_group_released():
    """Free the default process group, its threads joined, before the interpreter exits.

    A finished Runner sits in reference cycles that keep its DDP reducer, and through it
    the gloo group, alive past ``destroy_process_group`` into interpreter teardown. A gloo
    worker that then drops the last reference to a finished collective's tensors needs
    the GIL, is killed by the finalizing interpreter, and the run aborts with "terminate
    called without an active exception" (about 1 in 10 two-process test runs). Collecting
    the cycles first lets the group be freed while Python is still alive.
    """
    try:
        yield
    finally:
        gc.collect()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def allow_mmengine_checkpoints() -> None:
    """Let torch.load (weights_only by default since torch 2.6) read mmengine's own
    checkpoints; without this --resume and test-time loading fail.

    Their message hub holds HistoryBuffers, numpy arrays and scalars (rebuilt by numpy's
    ``scalar``, a plain constructor) and HistoryBuffer methods that
    pickle as ``getattr(buffer, 'min')``. Allowing ``getattr`` grants attribute reads
    only: the weights-only unpickler still calls nothing outside its allow-list.
    """
    torch.serialization.add_safe_globals(
        mmengine_safe_globals() + [np.core.multiarray.scalar, getattr])


def build_runner(cfg: Config, changes: List[str] = ()) -> Runner:
    """Build the (possibly custom) runner and log the machine adaptations into its log."""
    allow_mmengine_checkpoints()
    init_cpu_process_group(cfg)
    if 'runner_type' in cfg:
        init_default_scope(cfg.get('default_scope', 'mmengine'))
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    for change in changes:
        runner.logger.info(change)
    return runner


def set_local_rank(local_rank: int) -> None:
    """``torch.distributed.launch`` passes --local-rank; torchrun sets LOCAL_RANK itself."""
    os.environ.setdefault('LOCAL_RANK', str(local_rank))
