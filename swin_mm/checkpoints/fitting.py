"""Fitting a Swin v1 state dict to a given backbone's shapes: the load hook's job.

Every way weights reach the backbone (``init_cfg=dict(type='Pretrained')``, mmengine's
``load_from`` and ``--resume``, a plain ``load_state_dict``) goes through
``SwinBackbone._load_from_state_dict``, which calls :func:`fit_state_dict` with the
backbone's :class:`FitTarget` (its state dict and windows: no model here):

- files the backbone's ``_version`` marks as older (``convert_layout``: the official and
  timm names, mmdet/mmseg files with a final ``norm`` or ``attn_mask`` buffers) are
  converted by :mod:`.layouts`;
- relative position bias tables are resampled to the target window, the absolute
  embedding to its pretraining grid, and ``relative_position_index`` (derived from the
  window, not learned) is the target's own.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from .errors import CheckpointError
from .implied_sizes import grid_of_abs_embed, window_of_bias_table
from .layouts import convert_state_dict

_OLD_NAMES = ('layers.', 'patch_embed.proj.', 'norm.')


def resize_relative_position_bias_table(table: torch.Tensor, window, key: str = 'table'
                                        ) -> torch.Tensor:
    """Bicubically resample a ((2w-1)^2, heads) table to a (h, w) `window`."""
    side = 2 * window_of_bias_table(table, key) - 1
    target = (2 * window[0] - 1, 2 * window[1] - 1)
    grid = table.T.reshape(1, table.shape[1], side, side).float()
    grid = F.interpolate(grid, size=target, mode='bicubic', align_corners=False)
    return grid.reshape(table.shape[1], -1).T.to(table.dtype)


def resize_absolute_pos_embed(embed: torch.Tensor, grid) -> torch.Tensor:
    """(1, L, C) square embedding -> (1, grid_h * grid_w, C)."""
    side = grid_of_abs_embed(embed)
    if (side, side) == tuple(grid):
        return embed
    square = embed.reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    square = F.interpolate(square, size=tuple(grid), mode='bicubic', align_corners=False)
    return square.flatten(2).transpose(1, 2).to(embed.dtype)


def _needs_conversion(keys) -> bool:
    return any(k.startswith(_OLD_NAMES) or k.endswith('attn_mask') for k in keys)


@dataclass
class FitTarget:
    """What fitting needs to know of the receiving backbone."""
    state: Dict[str, torch.Tensor]           # its own state dict (no prefix)
    windows: Dict[str, Tuple[int, int]]      # bias table key -> its (h, w) window
    pos_embed_grid: Optional[Tuple[int, int]] = None  # absolute embedding grid, if any


def _fit_tensor(key: str, value: torch.Tensor, own: torch.Tensor,
                target: FitTarget) -> torch.Tensor:
    if key.endswith('relative_position_bias_table') and value.shape != own.shape:
        if value.shape[1] != own.shape[1]:
            raise CheckpointError(f'{key}: expected {own.shape[1]} heads, found '
                                  f'{value.shape[1]}')
        return resize_relative_position_bias_table(value, target.windows[key], key)
    if key == 'absolute_pos_embed' and value.shape != own.shape:
        return resize_absolute_pos_embed(value, target.pos_embed_grid)
    return value


def fit_state_dict(state_dict: Dict[str, torch.Tensor], target: FitTarget, prefix: str = '',
                   convert_layout: bool = False) -> None:
    """Fit the entries of `state_dict` under `prefix` to `target`, in place; with
    `convert_layout`, convert older layouts' names first.

    `state_dict` is the loader's own copy (torch's and mmengine's loaders copy the
    caller's dict), so the caller's dict and tensors are never modified.
    """
    inside = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not inside:
        return
    if convert_layout and _needs_conversion(inside):
        for key in inside:
            del state_dict[prefix + key]
        inside = convert_state_dict(inside, prefix='').backbone
    own = target.state
    for key, value in own.items():
        if key.endswith('relative_position_index'):
            inside[key] = value
    for key, value in inside.items():
        fitted = _fit_tensor(key, value, own[key], target) if key in own else value
        state_dict[prefix + key] = fitted
