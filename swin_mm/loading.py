"""Loading pretrained weights into a SwinBackbone, whatever size they were trained at."""
import logging
import math
import re
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import print_log

from .checkpoint_io import CheckpointError, DownloadError, read_checkpoint
from .convert import to_backbone_state_dict

_OUTPUT_NORM = re.compile(r'norm(\d+)\.(weight|bias)')


def resize_relative_position_bias_table(table: torch.Tensor, window) -> torch.Tensor:
    """Bicubically resample a ((2h-1)*(2w-1), heads) table from a square window to `window`."""
    side = math.isqrt(table.shape[0])
    if side * side != table.shape[0]:
        raise CheckpointError(f'expected a square relative_position_bias_table, found '
                              f'{table.shape[0]} rows')
    target = (2 * window[0] - 1, 2 * window[1] - 1)
    grid = table.T.reshape(1, table.shape[1], side, side).float()
    grid = F.interpolate(grid, size=target, mode='bicubic', align_corners=False)
    return grid.reshape(table.shape[1], -1).T.to(table.dtype)


def resize_absolute_pos_embed(embed: torch.Tensor, grid) -> torch.Tensor:
    """(1, L, C) or (1, C, h, w) square embedding -> (1, grid_h * grid_w, C)."""
    if embed.dim() == 3:
        side = math.isqrt(embed.shape[1])
        if side * side != embed.shape[1]:
            raise CheckpointError(f'expected a square absolute_pos_embed grid, found '
                                  f'{embed.shape[1]} positions')
        embed = embed.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    if tuple(embed.shape[2:]) != tuple(grid):
        embed = F.interpolate(embed.float(), size=tuple(grid), mode='bicubic',
                              align_corners=False)
    return embed.flatten(2).transpose(1, 2)


def fit_to_model(state_dict: Dict[str, torch.Tensor], model,
                 own: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Resize tables/embeddings to `model`'s window and pretrain size (`own` is its state dict).

    ``relative_position_index`` is derived from the window, not learned, so the model's
    own value always wins (and is never reported missing).
    """
    fitted = dict(state_dict)
    for key, value in own.items():
        if key.endswith('relative_position_index'):
            fitted[key] = value
        elif key.endswith('relative_position_bias_table') and key in fitted:
            if fitted[key].shape[1] != value.shape[1]:
                raise CheckpointError(f'{key}: expected {value.shape[1]} heads, found '
                                      f'{fitted[key].shape[1]}')
            if fitted[key].shape != value.shape:
                window = model.get_submodule(key.rsplit('.', 1)[0]).window
                fitted[key] = resize_relative_position_bias_table(fitted[key], window)
        elif key == 'absolute_pos_embed' and key in fitted:
            fitted[key] = resize_absolute_pos_embed(fitted[key], model.pos_embed_grid)
    return fitted


def _summary(keys) -> str:
    keys = sorted(keys)
    shown = ', '.join(keys[:8])
    return f'{len(keys)} ({shown}{", ..." if len(keys) > 8 else ""})'


def _missing_by_design(missing, state_dict, last_stage: int):
    """Split missing keys into what the checkpoint cannot have, with the reason, and the
    rest (which it should have had).

    Classification checkpoints (and files converted from them) have at most one final
    norm (our last output norm), no per-stage output norms; no published checkpoint has
    the HTC++ global attention layer, which is new in the detector.
    """
    expected, rest = [], list(missing)
    norms_in_file = {int(m.group(1)) for k in state_dict for m in [_OUTPUT_NORM.fullmatch(k)] if m}
    norms_missing = sorted({k.split('.')[0] for k in missing if _OUTPUT_NORM.fullmatch(k)})
    if norms_missing and norms_in_file <= {last_stage}:
        expected.append((f'{", ".join(norms_missing)} keep their initialisation',
                         'the checkpoint has no per-stage output norms, as classification '
                         'checkpoints do'))
        rest = [k for k in rest if not _OUTPUT_NORM.fullmatch(k)]
    attention = [k for k in rest if k.startswith('global_attn.')]
    if attention and not any(k.startswith('global_attn.') for k in state_dict):
        expected.append((f'global_attn ({len(attention)} tensors) starts as an identity',
                         'the HTC++ global attention layer is new: no released checkpoint '
                         'has it'))
        rest = [k for k in rest if not k.startswith('global_attn.')]
    return expected, rest


def load_pretrained(model, path: str, prefix: Optional[str] = None) -> None:
    """Load `path` into `model` non-strictly: keys missing by design are logged as INFO
    with the reason, other missing and unexpected keys as one WARNING line each."""
    try:
        checkpoint = read_checkpoint(path)
    except DownloadError as err:
        raise DownloadError(f'{err}; without network access, download it elsewhere and set '
                            f'model.backbone.init_cfg.checkpoint to the local file '
                            f'(--cfg-options model.backbone.init_cfg.checkpoint=PATH)') from None
    state_dict, layout = to_backbone_state_dict(checkpoint, prefix=prefix)
    shapes = model.state_dict()
    state_dict = fit_to_model(state_dict, model, shapes)
    mismatched = [k for k, v in state_dict.items() if k in shapes and v.shape != shapes[k].shape]
    if mismatched:
        k = mismatched[0]
        raise CheckpointError(f'{path}: {k} expected shape {tuple(shapes[k].shape)}, found '
                              f'{tuple(state_dict[k].shape)} (and {len(mismatched) - 1} more)')
    result = model.load_state_dict(state_dict, strict=False)
    print_log(f'SwinBackbone: loaded {path} ({layout} layout, {len(state_dict)} tensors)',
              logger='current')
    expected, missing = _missing_by_design(result.missing_keys, state_dict,
                                           last_stage=len(model.stages) - 1)
    for what, reason in expected:
        print_log(f'SwinBackbone: {what} ({reason})', logger='current', level=logging.INFO)
    if missing:
        print_log(f'SwinBackbone: missing keys {_summary(missing)}',
                  logger='current', level=logging.WARNING)
    if result.unexpected_keys:
        print_log(f'SwinBackbone: unexpected keys {_summary(result.unexpected_keys)}',
                  logger='current', level=logging.WARNING)
