"""Keep BatchNorm running statistics alike on every process of a run without SyncBN.

Without CUDA the tools turn SyncBN into BN, so each process updates its running mean and
variance from its own batches. Validation during training then scores each process's
share of the images with that process's statistics, while the checkpoint (written by
rank 0) holds rank 0's only: the training log and ``tools/dist_test.sh`` disagree on the
same checkpoint. Averaging the statistics over the processes after every iteration,
before validation or saving can happen, keeps them identical. For the running mean this
is what SyncBN keeps (equal batch sizes); the running variance misses the spread of the
per-process means, which SyncBN would include.
"""
import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import nn

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def average_batch_norm_statistics(model: nn.Module) -> None:
    """Replace every BN running mean and variance by its mean over the process group."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    stats = [buffer for module in model.modules() if isinstance(module, _BATCH_NORMS)
             for buffer in (module.running_mean, module.running_var) if buffer is not None]
    for dtype in {buffer.dtype for buffer in stats}:
        group = [buffer for buffer in stats if buffer.dtype == dtype]
        flat = torch.cat([buffer.reshape(-1) for buffer in group])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        for buffer, averaged in zip(group, flat.split([b.numel() for b in group])):
            buffer.copy_(averaged.view_as(buffer))


@HOOKS.register_module()
class SyncBatchNormStatsHook(Hook):
    """Average BN running statistics over the processes after each training iteration.

    Its priority is above CheckpointHook's and validation runs after every
    ``after_train_iter`` hook, so what is saved and what is validated are the averages.
    """
    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        with torch.no_grad():
            average_batch_norm_statistics(runner.model)
