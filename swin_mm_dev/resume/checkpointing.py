"""Checkpoints that resume a run exactly and never appear half-written.

:class:`ResumableCheckpointHook` is mmengine's CheckpointHook with three changes:
every process's random state goes into the checkpoint (gathered to the process that
writes it) and comes back on resume; the file is written under a temporary name and
renamed, then ``last_checkpoint`` likewise, so it never names a partial file; and old
checkpoints beyond ``max_keep_ckpts`` are removed only after the new one is in place.
:func:`checkpoint_to_resume` picks the file ``--resume`` starts from.
"""
import os
import os.path as osp
import re
from typing import List, Optional, Tuple

from mmengine.dist import all_gather_object, get_dist_info, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS
from mmengine.runner import find_latest_checkpoint

from swin_mm.checkpoints import CheckpointError, read_checkpoint
from swin_mm.output_files import written_atomically
from .random_state import resumable_rng_state, set_rng_state
from .sampling import ResumableBatchSampler, ResumableSampler

_CHECKPOINT_NAME = re.compile(r'^(iter|epoch)_\d+\.pth$')
_PARTIAL_NAME = re.compile(r'^\..+\.partial\.')  # swin_mm.commands.written_atomically's


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """CheckpointHook whose checkpoints resume exactly (see the module); arguments as
    CheckpointHook's. Checkpoints go to a local directory (other backends: as
    CheckpointHook writes them, random states included)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._rng_states = None  # every process's, while a checkpoint is being saved
        self._resumed = None  # this process's, from the checkpoint resumed from

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        self._rng_states = all_gather_object(resumable_rng_state())  # every process
        try:
            if isinstance(self.file_backend, LocalBackend) and self.file_client_args is None:
                self._save_whole(runner, step, meta)
            else:
                super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self._rng_states = None

    def _save_whole(self, runner, step, meta) -> None:
        outdated = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        self.last_ckpt = osp.join(self.out_dir, self.filename_tmpl.format(step))
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        if not is_main_process():
            return
        with written_atomically(self.last_ckpt) as temporary:
            runner.save_checkpoint(
                osp.dirname(temporary), osp.basename(temporary),
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
            _flush_to_disk(temporary)
        with written_atomically(osp.join(runner.work_dir, 'last_checkpoint')) as temporary:
            with open(temporary, 'w') as file:
                file.write(self.last_ckpt)
            _flush_to_disk(temporary)
        _flush_to_disk(self.out_dir)
        if outdated is not None:
            path = osp.join(self.out_dir, self.filename_tmpl.format(outdated))
            if osp.isfile(path):
                os.remove(path)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._rng_states is not None:
            checkpoint['resume_state'] = dict(rng=self._rng_states,
                                              data_seed=_data_sampler(runner).seed)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._resumed = checkpoint.get('resume_state')

    def before_train_epoch(self, runner) -> None:
        """Continue the random streams of the checkpoint resumed from (the first
        epoch after resuming; with the lowest priority, just before training goes on)."""
        state, self._resumed = self._resumed, None
        if state is None or runner.iter == 0:  # not resumed (load_from keeps its streams)
            return
        rank, world_size = get_dist_info()
        if len(state['rng']) != world_size:
            runner.logger.warning(
                f'The checkpoint holds the random state of {len(state["rng"])} processes, '
                f'this run has {world_size}: random streams start afresh')
            return
        set_rng_state(state['rng'][rank])
        _data_sampler(runner).seed = state['data_seed']


def _data_sampler(runner) -> ResumableSampler:
    batches = runner.train_loop.dataloader.batch_sampler
    if not isinstance(batches, ResumableBatchSampler):
        raise TypeError('ResumableCheckpointHook expects the train dataloader to batch with '
                        f'ResumableBatchSampler, found {type(batches).__name__}')
    return batches.sampler


def _flush_to_disk(path: str) -> None:
    """fsync a file or directory, so a lost node's disk holds it whole or not at all."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def checkpoint_to_resume(work_dir: str, main_process: bool = True
                         ) -> Tuple[Optional[str], List[str]]:
    """The checkpoint ``--resume`` continues from, and what was done to get it (lines).

    That is the one ``last_checkpoint`` names, unless a checkpoint file is newer (the
    run stopped between writing it and updating ``last_checkpoint``): the newest that
    reads back whole is used, one that does not is set aside as ``*.unreadable``. Files
    a stopped save left under a temporary name are removed. Only the main process
    changes the directory; every process reaches the same answer.
    """
    if not osp.isdir(work_dir):
        return None, []
    lines = []
    names = sorted(os.listdir(work_dir))
    for name in filter(_PARTIAL_NAME.match, names):
        if main_process:
            os.remove(osp.join(work_dir, name))
        lines.append(f'Removed {osp.join(work_dir, name)}: a save that did not finish')
    latest = find_latest_checkpoint(work_dir)
    if latest is not None and not osp.isfile(latest):
        lines.append(f'last_checkpoint names {latest}, which does not exist')
        latest = None
    since = osp.getmtime(latest) if latest else float('-inf')
    newer = [osp.join(work_dir, name) for name in names if _CHECKPOINT_NAME.match(name)]
    newer = sorted((path for path in newer if osp.getmtime(path) > since
                    and not (latest and osp.samefile(path, latest))),
                   key=osp.getmtime, reverse=True)
    for path in newer:
        problem = _unreadable(path)
        if problem is None:
            lines.append(f'{path} is newer than last_checkpoint ({latest}) and reads back '
                         'whole: resuming from it')
            return path, lines
        if main_process:
            os.replace(path, path + '.unreadable')
        lines.append(f'{path} is newer than last_checkpoint ({latest}) but does not read '
                     f'back whole ({problem}): set aside as {path}.unreadable')
    return latest, lines


def _unreadable(path: str) -> Optional[str]:
    """Why `path` is not a whole mmengine checkpoint, or None if it is."""
    try:
        checkpoint = read_checkpoint(path)
    except (CheckpointError, OSError) as err:
        return str(err)
    missing = {'meta', 'state_dict'} - set(checkpoint)
    return f'no {" and no ".join(sorted(missing))}' if missing else None
