"""The backbone arguments a state dict in this plugin's layout was trained with.

Read from tensor shapes, so a converted checkpoint can be rebuilt and checked without
its config: :func:`infer_architecture` for ``SwinBackbone`` (Swin v1), with the parts
every Swin variant shares (:func:`shared_architecture`), and :func:`check_shapes` for any
backbone class. Swin V2's own parts are in :mod:`.v2_model_arguments`.
"""
import re
from typing import Dict, Optional

import torch

from ..checkpoints.errors import CheckpointError
from ..checkpoints.implied_sizes import grid_of_abs_embed, window_of_bias_table

_BLOCK = re.compile(r'stages\.(\d+)\.blocks\.(\d+)\.')


def shared_architecture(backbone: Dict[str, torch.Tensor]) -> dict:
    """The arguments every Swin variant reads the same way from `backbone` (no prefix,
    this plugin's names): patch embedding, depths, MLP ratio, strides, output norms."""
    projection = backbone.get('patch_embed.projection.weight')
    if projection is None or projection.dim() != 4:
        raise CheckpointError('expected patch_embed.projection.weight of shape (C, in, p, p), '
                              f'found {None if projection is None else tuple(projection.shape)}')
    blocks = {}
    for key in backbone:
        match = _BLOCK.match(key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise CheckpointError(f'expected blocks in stages 0..n-1, found stages {sorted(blocks)}')
    embed_dims, patch_size = projection.shape[0], projection.shape[-1]
    fc1 = backbone.get('stages.0.blocks.0.ffn.layers.0.0.weight')
    if fc1 is None:
        raise CheckpointError('expected stages.0.blocks.0.ffn.layers.0.0.weight, found none')
    return dict(
        embed_dims=embed_dims,
        depths=tuple(blocks[s] for s in range(len(blocks))),
        mlp_ratio=fc1.shape[0] / embed_dims,
        patch_size=patch_size,
        in_channels=projection.shape[1],
        strides=(patch_size,) + (2,) * (len(blocks) - 1),
        patch_norm='patch_embed.norm.weight' in backbone,
        out_indices=tuple(i for i in range(len(blocks)) if f'norm{i}.weight' in backbone),
    )


def first_blocks(backbone: Dict[str, torch.Tensor], num_stages: int,
                 suffix: str) -> Dict[str, torch.Tensor]:
    """``stages.i.blocks.0.<suffix>`` of every stage in stage order, or a CheckpointError."""
    keys = [f'stages.{stage}.blocks.0.{suffix}' for stage in range(num_stages)]
    missing = [key for key in keys if key not in backbone]
    if missing:
        raise CheckpointError(f'expected {missing[0]}, found none')
    return {key: backbone[key] for key in keys}


def infer_architecture(backbone: Dict[str, torch.Tensor],
                       pretrain_img_size: Optional[int] = None) -> dict:
    """SwinBackbone keyword arguments matching `backbone` (no prefix, this plugin's names).

    ``pretrain_img_size`` is read from ``absolute_pos_embed`` when there is one; otherwise
    the caller's value (e.g. read from an official ``attn_mask``) is kept, or None.
    """
    shared = shared_architecture(backbone)
    tables = first_blocks(backbone, len(shared['depths']),
                          'attn.w_msa.relative_position_bias_table')
    windows = {window_of_bias_table(table, key) for key, table in tables.items()}
    if len(windows) != 1:
        raise CheckpointError(f'expected one window size for all stages, found {sorted(windows)}')
    embed = backbone.get('absolute_pos_embed')
    if embed is not None:
        pretrain_img_size = grid_of_abs_embed(embed) * shared['patch_size']
    return dict(
        shared,
        num_heads=tuple(table.shape[1] for table in tables.values()),
        window_size=windows.pop(),
        qkv_bias='stages.0.blocks.0.attn.w_msa.qkv.bias' in backbone,
        use_abs_pos_embed=embed is not None,
        pretrain_img_size=pretrain_img_size,
    )


def check_shapes(backbone: Dict[str, torch.Tensor], model_class: type,
                 arguments: dict) -> None:
    """Raise CheckpointError unless `backbone` has exactly the keys and shapes of
    ``model_class(**arguments)`` (built on the meta device: no memory, no time)."""
    if not arguments['out_indices']:
        raise CheckpointError('expected at least one output norm (norm{i}.weight), found none')
    try:
        with torch.device('meta'):
            expected = model_class(**arguments).state_dict()
    except ValueError as err:
        raise CheckpointError(f'inconsistent architecture {arguments}: {err}') from None
    unexpected = sorted(set(backbone) - set(expected))
    missing = sorted(set(expected) - set(backbone))
    if unexpected or missing:
        raise CheckpointError(f'inconsistent checkpoint: unexpected keys {unexpected[:3]}, '
                              f'missing keys {missing[:3]}')
    for key, value in expected.items():
        if backbone[key].shape != value.shape:
            raise CheckpointError(f'inconsistent shapes: {key} expected {tuple(value.shape)} '
                                  f'for {arguments["embed_dims"]} channels, found '
                                  f'{tuple(backbone[key].shape)}')
