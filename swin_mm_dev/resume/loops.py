"""Training loops that continue a resumed run where it stopped, and finish what it left.

Against mmengine's ``IterBasedTrainLoop``/``EpochBasedTrainLoop`` (their hooks,
properties and validation rules are kept):
- resuming positions the batch sampler at the first batch not yet trained on, instead
  of loading and discarding every earlier batch ("Advance dataloader");
- an epoch-based run resumes inside an epoch too (checkpoints saved by iteration);
- a validation that was due where the run stopped, and did not finish (the work dir
  records each one that did), runs before training goes on;
- validation and the start of a data iterator leave the random streams as they found
  them, so a resumed run draws exactly what the uninterrupted one drew.
"""
import json
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmengine.runner.base_loop import BaseLoop
from mmengine.runner.utils import calc_dynamic_intervals

from swin_mm.output_files import written_atomically
from .random_state import isolated_rng
from .sampling import ResumableBatchSampler

VALIDATION_RECORD = 'last_validation'  # in the work dir: where the last finished one ran


class _ResumableTraining:
    """What both loops add: batches from a position, validation that is never lost."""

    def _check_batch_sampler(self) -> None:
        found = self.dataloader.batch_sampler
        if not isinstance(found, ResumableBatchSampler):
            raise TypeError(f'{type(self).__name__} expects the train dataloader to batch '
                            f'with ResumableBatchSampler, found {type(found).__name__}')

    def _batches_from(self, batches_done: int):
        """A data iterator that skips `batches_done` batches without loading them."""
        self.dataloader.batch_sampler.start_at(batches_done)
        with isolated_rng():  # a DataLoader iterator draws its base seed
            return iter(self.dataloader)

    def _validation_due(self, step: int, last: int) -> bool:
        self._decide_current_val_interval()
        return (self.runner.val_loop is not None and step >= self.val_begin
                and (step % self.val_interval == 0 or step == last))

    def _validate(self) -> None:
        with isolated_rng():
            self.runner.val_loop.run()
        if is_main_process():
            with written_atomically(osp.join(self.runner.work_dir, VALIDATION_RECORD)) as tmp:
                with open(tmp, 'w') as file:
                    json.dump(self._position(), file)

    def _position(self) -> dict:
        return dict(epoch=self._epoch, iter=self._iter)

    def _finish_interrupted_validation(self, step: int, last: int) -> None:
        """Run the validation due at the resumed position unless it finished."""
        if not self._validation_due(step, last):
            return
        record = osp.join(self.runner.work_dir, VALIDATION_RECORD)
        if osp.isfile(record):
            with open(record) as file:
                if json.load(file) == self._position():
                    return
        self.runner.logger.info(f'The validation due at epoch {self._epoch}, iteration '
                                f'{self._iter} did not finish before the run stopped: '
                                'running it now')
        self._validate()


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(_ResumableTraining, IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop``, resumable anywhere (see the module).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader or dict): Batching with :class:`ResumableBatchSampler`
            over an infinite :class:`ResumableSampler`.
        max_iters (int): Training iterations.
        val_begin (int): The iteration from which to validate. Defaults to 1.
        val_interval (int): Validate every this many iterations. Defaults to 1000.
        dynamic_intervals (list[tuple[int, int]], optional): (milestone, interval)
            pairs, as in mmengine. Defaults to None.
    """

    def __init__(self, runner, dataloader, max_iters: int, val_begin: int = 1,
                 val_interval: int = 1000, dynamic_intervals=None) -> None:
        # Not IterBasedTrainLoop.__init__: it starts a data iterator at batch 0, whose
        # workers would load batches a resumed run skips.
        BaseLoop.__init__(self, runner, dataloader)
        self._check_batch_sampler()
        if int(max_iters) != max_iters:
            raise ValueError(f'expected an integer max_iters, found {max_iters}')
        self._max_iters, self._max_epochs = int(max_iters), 1
        self._epoch = self._iter = 0
        self.val_begin, self.val_interval = val_begin, val_interval
        self.stop_training = False
        if hasattr(self.dataloader.dataset, 'metainfo'):
            runner.visualizer.dataset_meta = self.dataloader.dataset.metainfo
        self.dynamic_milestones, self.dynamic_intervals = calc_dynamic_intervals(
            val_interval, dynamic_intervals)

    def run(self):
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')  # the whole run is one epoch
        if self._iter > 0:
            self._finish_interrupted_validation(self._iter, self._max_iters)
        batches = self._batches_from(self._iter)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            self.run_iter(next(batches))
            if self._validation_due(self._iter, self._max_iters):
                self._validate()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(_ResumableTraining, EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop``, resumable anywhere, inside an epoch too (see
    the module). Arguments as ``EpochBasedTrainLoop``'s; the dataloader batches with
    :class:`ResumableBatchSampler` over a (finite) :class:`ResumableSampler`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._check_batch_sampler()

    def run(self):
        self.runner.call_hook('before_train')
        if self._epoch > 0 and self._batches_done_in_epoch() == 0:
            self._finish_interrupted_validation(self._epoch, self._max_epochs)
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            if self._validation_due(self._epoch, self._max_epochs):
                self._validate()
        self.runner.call_hook('after_train')
        return self.runner.model

    def _batches_done_in_epoch(self) -> int:
        return self._iter - self._epoch * len(self.dataloader)

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        self.dataloader.batch_sampler.set_epoch(self._epoch)
        done = self._batches_done_in_epoch()
        for index, data_batch in enumerate(self._batches_from(done), done):
            self.run_iter(index, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
