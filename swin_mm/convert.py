"""Checkpoint layouts -> this plugin's (mmdet/mmseg) backbone layout."""
from typing import Dict, Optional, Tuple

import torch

from .checkpoint_io import CheckpointError


def unwrap(checkpoint) -> Dict[str, torch.Tensor]:
    """The state dict inside a checkpoint: under 'state_dict', 'model', or bare."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'expected a checkpoint dict, found {type(checkpoint).__name__}')
    for wrapper in ('state_dict', 'model'):
        if isinstance(checkpoint.get(wrapper), dict):
            return checkpoint[wrapper]
    return checkpoint


def strip_prefix(state_dict, prefix: str):
    """Keys under `prefix` with it removed (all keys when none has it)."""
    if not any(k.startswith(prefix) for k in state_dict):
        return dict(state_dict)
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def to_backbone_state_dict(checkpoint, prefix: Optional[str] = None
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
    """The backbone tensors of `checkpoint` in this plugin's layout, and the layout's name."""
    state_dict = strip_prefix(unwrap(checkpoint), 'module.')
    state_dict = strip_prefix(state_dict, prefix if prefix else 'backbone.')
    return state_dict, 'mmdet'
