"""From a config file and command-line choices to a ready mmengine Runner, GPU or not.

tools/train.py and tools/test.py share this, so a config written for 8 CUDA GPUs (nccl,
SyncBN) also runs unchanged in CPU processes: without CUDA the process group uses gloo
and SyncBN becomes BN, and every such change is written to the run's log.
"""
import argparse
import contextlib
import datetime
import gc
import inspect
import os
import os.path as osp
from typing import List, Optional

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.device import get_device
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner, find_latest_checkpoint

from . import norm_sync  # noqa: F401  (registers SyncBatchNormStatsHook)
from .checkpoint_safety import read_checkpoints_weights_only
from .console import quiet_console, quiet_warnings
from .launch import report_error
from swin_mm.checkpoints.errors import CheckpointError


class SetupError(ValueError):
    """A config or command-line choice the tools cannot run, and what to do instead."""


@contextlib.contextmanager
def one_line_errors():
    """Report a setup or checkpoint problem as one line, exit status 2 (on stderr, or
    through the distributed launcher, which prints it once for all processes)."""
    try:
        yield
    except (SetupError, CheckpointError, FileNotFoundError) as err:
        report_error(f'error: {err}')
        raise SystemExit(2) from None


class _ToolParser(argparse.ArgumentParser):
    """Usage errors as one line, reported like the tools' other errors."""

    def error(self, message):
        report_error(f'{self.prog}: error: {message}')
        raise SystemExit(2)


def tool_parser(description: str) -> argparse.ArgumentParser:
    """Arguments shared by tools/train.py and tools/test.py (the config comes first)."""
    parser = _ToolParser(description=description)
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


def use_tta(cfg: Config) -> List[str]:
    """Test with the config's ``tta_model`` wrapping its model and its ``tta_pipeline``;
    return the change, one line."""
    missing = [key for key in ('tta_model', 'tta_pipeline') if not cfg.get(key)]
    if missing:
        raise SetupError(f'--tta expects tta_model and tta_pipeline in the config, found no '
                         f'{" and no ".join(missing)}')
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:  # wrappers such as RepeatDataset
        dataset = dataset.dataset
    dataset.pipeline = cfg.tta_pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    return [f'--tta: the model wrapped in {cfg.tta_model.type}, the test set read through '
            f'tta_pipeline']


def use_amp(cfg: Config) -> None:
    """Mixed precision through mmengine's AmpOptimWrapper (float16 autocast, dynamic loss
    scale), which runs on CUDA, NPU, MLU and MUSA devices only."""
    if get_device() == 'cpu':
        raise SetupError('--amp needs a GPU: mmengine\'s AmpOptimWrapper autocasts on CUDA, '
                         'NPU, MLU or MUSA devices only; on CPU train in float32 (drop --amp)')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def skip_pretrained_init_when_loading(cfg: Config) -> List[str]:
    """Drop Pretrained init_cfgs when a checkpoint will replace the weights anyway.

    The Runner initialises weights before ``load_from``/``--resume`` loads, so without
    this a fine-tuning or resumed run would still fetch the ImageNet file (and fail
    offline) only to overwrite it. Resuming without a checkpoint in the work dir starts
    from scratch, and then the Pretrained init is kept.
    """
    checkpoint = cfg.get('load_from')
    if cfg.get('resume') and not checkpoint:
        checkpoint = find_latest_checkpoint(cfg.work_dir)
    if not checkpoint:
        return []
    return [f'{checkpoint} replaces the weights: {where}.init_cfg (Pretrained '
            f'{init_cfg.get("checkpoint")}) skipped'
            for where, init_cfg in _pop_pretrained(cfg.model, 'model')]


def _pop_pretrained(node, where: str):
    """Set every ``init_cfg=dict(type='Pretrained', ...)`` under `node` to None."""
    found = []
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            found.append((where, init_cfg))
            node['init_cfg'] = None
        for key, value in node.items():
            found += _pop_pretrained(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, item in enumerate(node):
            found += _pop_pretrained(item, f'{where}[{index}]')
    return found


def fit_to_machine(cfg: Config, training: bool = False) -> List[str]:
    """Adapt a config to this machine; return what was changed, one line each.

    Without CUDA: gloo replaces nccl; SyncBN (CUDA-only in torch) becomes BN, i.e.
    per-process batch statistics, whose running averages a hook keeps alike across
    processes; DDP wraps CPU modules, which must not be given device ids. Everywhere:
    no more dataloader workers per process than this machine has cores for.
    """
    changes = _fit_workers(cfg)
    if torch.cuda.is_available():
        return changes
    dist_cfg = cfg.setdefault('env_cfg', ConfigDict()).setdefault('dist_cfg', ConfigDict())
    if cfg.launcher != 'none' and dist_cfg.get('backend', 'nccl') != 'gloo':
        changes.append(f'no CUDA: distributed backend {dist_cfg.get("backend", "nccl")} -> gloo')
        dist_cfg.backend = 'gloo'
    count = _replace_sync_bn(cfg.model)
    if count:
        changes.append(f'no CUDA: {count} SyncBN norm_cfg(s) -> BN (SyncBN needs CUDA; '
                       'batch statistics are per process)')
        if training:
            _check_batch_norm_batch_size(cfg)
        if cfg.launcher != 'none':
            cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
                dict(type='SyncBatchNormStatsHook')]
            changes.append('no CUDA: BN running statistics averaged over the processes '
                           'after every iteration (SyncBatchNormStatsHook), so validation '
                           'and checkpoints see the same ones')
    if cfg.launcher != 'none':
        wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
            type='MMDistributedDataParallel', **_no_buffer_broadcast(),
            find_unused_parameters=cfg.get('find_unused_parameters', False))
        wrapper.device_ids = None
        cfg.model_wrapper_cfg = wrapper
    return changes


def _no_buffer_broadcast() -> dict:
    """DDP option for mmengine's default of not broadcasting buffers before each forward:
    ``forward_sync_buffers`` from torch 2.13, ``broadcast_buffers`` (deprecated there)
    before."""
    if 'forward_sync_buffers' in inspect.signature(DistributedDataParallel).parameters:
        return dict(forward_sync_buffers=False)
    return dict(broadcast_buffers=False)


def _fit_workers(cfg: Config) -> List[str]:
    """Cap each dataloader's workers at this machine's cores per local process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    processes = int(os.environ.get('LOCAL_WORLD_SIZE', 1))
    limit = max(1, (cores or 1) // processes)
    changes = []
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if loader and loader.get('num_workers', 0) > limit:
            changes.append(f'{name}.num_workers {loader.num_workers} -> {limit} ({cores} CPU '
                           f'cores for {processes} process(es))')
            loader.num_workers = limit
    return changes


def _check_batch_norm_batch_size(cfg: Config) -> None:
    """BN cannot train on a 1x1 map from one image (UPerHead's pool scale 1); SyncBN
    could, because it pools the statistics of every GPU's image."""
    batch = cfg.get('train_dataloader', {}).get('batch_size')
    pool_scales = cfg.model.get('decode_head', {}).get('pool_scales') or ()
    if batch == 1 and 1 in pool_scales:
        raise SetupError(
            'train_dataloader.batch_size=1 per process cannot train on CPU: SyncBN became BN, '
            'and BN cannot normalise the 1x1 map of decode_head pool scale 1 from one image '
            '("Expected more than 1 value per channel when training"); use '
            '--cfg-options train_dataloader.batch_size=2 or more')


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


def build_runner(cfg: Config, changes: List[str] = ()) -> Runner:
    """Build the (possibly custom) runner and log the machine adaptations into its log.

    Checkpoints it loads are read weights-only and must hold the model's weights
    (:mod:`.checkpoint_safety`); its console shows progress, metrics and these changes,
    its log file everything (:mod:`.console`).
    """
    quiet_warnings()
    read_checkpoints_weights_only()
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type='CheckpointHoldsModelWeightsHook')]
    init_cpu_process_group(cfg)
    runner = _tool_runner_class(cfg).from_cfg(cfg)
    for change in changes:
        runner.logger.info(change)
    runner.logger.info(f'config, environment and optimizer options in full: '
                       f'{osp.join(runner.log_dir, runner.timestamp)}.log')
    return runner


def _tool_runner_class(cfg: Config) -> type:
    """The config's runner class (``runner_type``, else mmengine's Runner) with the
    console filter on its logger."""
    base = Runner
    if 'runner_type' in cfg:
        init_default_scope(cfg.get('default_scope', 'mmengine'))
        base = RUNNERS.get(cfg.runner_type)

    class ToolRunner(base):
        def build_logger(self, *args, **kwargs):
            return quiet_console(super().build_logger(*args, **kwargs))

    return ToolRunner


def set_local_rank(local_rank: int) -> None:
    """``torch.distributed.launch`` passes --local-rank; torchrun sets LOCAL_RANK itself."""
    os.environ.setdefault('LOCAL_RANK', str(local_rank))
