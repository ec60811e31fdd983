"""Checkpoints the tools load are read weights-only and must hold the model's weights.

mmengine loads ``load_from``, ``--resume`` and tools/test.py's checkpoint (and the
Pretrained init_cfgs of parts other than the backbone) with ``torch.load`` and torch's
default, which unpickles anything before torch 2.6: a pickle's ``__reduce__`` runs code.
:func:`read_checkpoints_weights_only` makes mmengine's checkpoint loader for local files,
URLs and storage backends read through :func:`swin_mm.checkpoints.reading.read_checkpoint`
(tensors, containers, numpy values and mmengine's log buffers; nothing runs), on every
torch and whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says. A refused file ends the run
with one line (:class:`~swin_mm.checkpoints.errors.CheckpointError`).

:class:`CheckpointHoldsModelWeightsHook` refuses a checkpoint that holds none of the
model's weights, which mmengine would load with a warning and run on random weights.
"""
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import CheckpointLoader, find_latest_checkpoint

from swin_mm.checkpoints.errors import CheckpointError
from swin_mm.checkpoints.layouts import unwrap
from swin_mm.checkpoints.reading import read_checkpoint

# mmengine's schemes whose bytes read_checkpoint fetches itself: local paths, URLs, and
# the storage backends mmengine.fileio reads. (Model-zoo names such as torchvision://
# stay mmengine's: they resolve to the OpenMMLab and torchvision download sites.)
_SCHEMES = ('', 'http://', 'https://', r'(\S+\:)?s3://', r'(\S+\:)?petrel://')


def load_from_weights_only(filename: str, map_location=None):
    """mmengine checkpoint loader (its log names it by what follows ``load_from_``):
    the file read on CPU, weights-only. The Runner copies weights and optimizer state to
    the model's device, so `map_location` is not needed."""
    return read_checkpoint(filename)


def read_checkpoints_weights_only() -> None:
    """Route mmengine's checkpoint loading in this process through the weights-only
    reader (idempotent)."""
    CheckpointLoader.register_scheme(prefixes=_SCHEMES, loader=load_from_weights_only,
                                     force=True)


@HOOKS.register_module()
class CheckpointHoldsModelWeightsHook(Hook):
    """Refuse a checkpoint (``load_from``, ``--resume``, tools/test.py's) in which none
    of the model's parameters and buffers appear, by name, as tensors."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model  # the module the weights go to, as mmengine's loader finds it
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
            model = model.module
        wanted = set(model.state_dict())
        tensors = [key[len('module.'):] if key.startswith('module.') else key
                   for key, value in unwrap(checkpoint).items()
                   if isinstance(value, torch.Tensor)]
        if wanted.intersection(tensors):
            return
        source = runner._load_from or find_latest_checkpoint(runner.work_dir) or 'the checkpoint'
        found = (f'{len(tensors)} tensors, none of them the model\'s (such as '
                 f'{sorted(tensors)[0]!r})' if tensors else 'no tensors')
        raise CheckpointError(
            f'expected the weights of the {type(model).__name__} this config builds (such as '
            f'{sorted(wanted)[0]!r}) in {source}, found {found}; give a checkpoint of this '
            f'model, or a classification file as the backbone\'s init_cfg checkpoint '
            f'(tools/swin2mm.py converts one for load_from)')
