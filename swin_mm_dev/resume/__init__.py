"""Training that survives being killed: resumed anywhere, it ends bit-identical to the
uninterrupted run, and nothing it had started is skipped.

:func:`make_resumable` turns a config's training parts into the resumable ones
registered here (tools/train.py applies it to every run):

- :mod:`.sampling`: a positionable sampler and batch sampler, and per-sample seeded
  augmentation, so resuming at iteration N loads no data for the first N;
- :mod:`.loops`: mmengine's iteration- and epoch-based loops that start from that
  position and run a validation the stop interrupted;
- :mod:`.checkpointing`: every process's random state in the checkpoint, written under
  a temporary name and renamed; which file ``--resume`` continues from;
- :mod:`.random_state`: the random streams saved, restored, set aside;
- :mod:`.launcher`: workers that die with their launcher.
"""
import os
from typing import List

from mmengine.config import Config, ConfigDict

from .checkpointing import ResumableCheckpointHook, checkpoint_to_resume
from .launcher import die_with_launcher
from .loops import ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop
from .sampling import (ResumableBatchSampler, ResumableSampler, SampleIndex,
                       SampleSeededDataset)

__all__ = ['ResumableBatchSampler', 'ResumableCheckpointHook', 'ResumableEpochBasedTrainLoop',
           'ResumableIterBasedTrainLoop', 'ResumableSampler', 'SampleIndex',
           'SampleSeededDataset', 'checkpoint_to_resume', 'die_with_launcher',
           'make_resumable', 'prepare_resumable_run']

_LOOPS = {'IterBasedTrainLoop': 'ResumableIterBasedTrainLoop',
          'EpochBasedTrainLoop': 'ResumableEpochBasedTrainLoop'}
_SAMPLERS = ('DefaultSampler', 'InfiniteSampler')


def make_resumable(cfg: Config) -> List[str]:
    """Swap in the resumable loop, sampler, batch sampler, dataset wrapper and checkpoint
    hook; return the line for the run's log. A config with another loop, sampler or
    checkpoint hook is left as it is, and the line says so."""
    train_cfg, loader = cfg.get('train_cfg'), cfg.get('train_dataloader')
    if not train_cfg or not loader:
        return []
    loop = train_cfg.get('type') or ('EpochBasedTrainLoop' if train_cfg.get('by_epoch')
                                     else 'IterBasedTrainLoop')
    sampler = loader.get('sampler', {}).get('type')
    checkpoint = cfg.get('default_hooks', {}).get('checkpoint')
    unknown = [f'{what} {name}' for what, name, known in [
        ('train loop', loop, _LOOPS), ('sampler', sampler, _SAMPLERS),
        ('checkpoint hook', (checkpoint or {}).get('type', 'CheckpointHook'),
         ('CheckpointHook',))]
        if name not in known]
    if unknown:
        return [f'not resumable exactly: {", ".join(unknown)} (swin_mm_dev.resume knows '
                f'{", ".join(_LOOPS)}, {", ".join(_SAMPLERS)} and CheckpointHook)']
    cfg.train_cfg = ConfigDict({key: value for key, value in train_cfg.items()
                                if key not in ('type', 'by_epoch')}, type=_LOOPS[loop])
    iteration_based = loop == 'IterBasedTrainLoop'
    original = loader.sampler
    loader.sampler = ConfigDict(type='ResumableSampler', infinite=iteration_based,
                                shuffle=original.get('shuffle', True),
                                round_up=original.get('round_up', True))
    if 'seed' in original:
        loader.sampler.seed = original.seed
    loader.batch_sampler = ConfigDict(type='ResumableBatchSampler',
                                      batch_sampler=loader.get('batch_sampler'),
                                      drop_last=loader.pop('drop_last', False))
    loader.dataset = ConfigDict(type='SampleSeededDataset', dataset=loader.dataset)
    if checkpoint:
        checkpoint.type = 'ResumableCheckpointHook'
    return ['resumable training (swin_mm_dev.resume): ' + ', '.join([
        f'{loop} -> {_LOOPS[loop]}', f'{sampler} -> ResumableSampler'
        f'{" (infinite)" if iteration_based else ""} + ResumableBatchSampler',
        'per-sample seeded augmentation (SampleSeededDataset)',
        'CheckpointHook -> ResumableCheckpointHook'])]


def prepare_resumable_run(cfg: Config) -> List[str]:
    """:func:`make_resumable`, and with ``cfg.resume`` (and no ``load_from``) the
    checkpoint to continue from as ``cfg.load_from`` (see :func:`checkpoint_to_resume`);
    the Runner then resumes through ``Runner.resume`` -> ``Runner.load_checkpoint``.
    Returns the lines for the run's log."""
    lines = make_resumable(cfg)
    if cfg.get('resume') and not cfg.get('load_from'):
        main_process = os.environ.get('RANK', '0') == '0'
        cfg.load_from, found = checkpoint_to_resume(cfg.work_dir, main_process)
        lines += found
    return lines
