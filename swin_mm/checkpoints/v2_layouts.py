"""Every Swin V2 checkpoint layout -> this plugin's ``SwinV2Backbone`` names, as
functions on state dicts (no model import).

This plugin's V2 names are mmpretrain's ``SwinTransformerV2`` names (``stages.i.blocks.j.
attn.w_msa.*``, ``ffn.layers.*``, per-output ``norm{i}``), except that patch merging sits at
the **end** of stage i (``stages.i.downsample``, as in the official code) and its
reduction takes the official concatenation order.

Layouts (``V2_LAYOUTS``), told apart by their key names:
  official     microsoft/Swin-Transformer (``{'model': ...}``, ``layers.*``, merging at the
               end of stage i as ``layers.i.downsample``, final ``norm``, ``head``; saved
               ``relative_coords_table``, ``relative_position_index`` and ``attn_mask``).
  timm         timm's ``SwinTransformerV2``: official names, merging at the start of the
               next stage (``layers.i+1.downsample``), ``head.fc``.
  mmpretrain   ``backbone.stages.*`` with merging at the start of the next stage in
               ``nn.Unfold`` column order, ``backbone.norm3``, ``head.fc``.
  torchvision  ``features.*`` (``features.2i+1`` the blocks of stage i, ``features.2i+2``
               its merging), one ``qkv.bias`` whose middle (k) third its forward ignores.
  swin_mm      this plugin's own names: passed through.

Derived buffers (coordinate tables, position indices, shift masks) are dropped from
every layout: the model computes its own for its windows. Nothing else is needed to
change the window: the position-bias MLP takes coordinates, not a table.
"""
import re
from typing import Callable, Dict, List, Optional

import torch

from .errors import CheckpointError
from .implied_sizes import pretrained_window_of_coords_table, window_of_coords_table
from .layouts import BACKBONE_PREFIX, Conversion, _backbone_prefix, _first, strip_prefix, unwrap

V2_LAYOUTS = ('official', 'timm', 'mmpretrain', 'torchvision', 'swin_mm')
V2_MARKERS = ('cpb_mlp', 'logit_scale')
DERIVED_BUFFERS = ('relative_coords_table', 'relative_position_index', 'attn_mask')
# Attention tensors under the same name in every layout but torchvision's qkv bias.
_ATTENTION = (r'(logit_scale|q_bias|v_bias|qkv\.weight|proj\.weight|proj\.bias|'
              r'cpb_mlp\.0\.weight|cpb_mlp\.0\.bias|cpb_mlp\.2\.weight)')
_MERGING = r'(reduction\.weight|norm\.weight|norm\.bias)'
_AFFINE = r'(weight|bias)'
_BLOCK_SUFFIX = 'stages.{0}.blocks.{1}.'
# A block's coordinates table in every layout that saves one (official, mmpretrain and
# this plugin's stage index; torchvision's features.2i+1 for stage i).
_COORDS_TABLE = re.compile(r'(layers|stages|features)\.(\d+)\.(?:blocks\.)?\d+\.attn\.'
                           r'(?:w_msa\.)?relative_coords_table')


def is_v2_state_dict(state_dict) -> bool:
    """Whether `state_dict` holds Swin V2 weights (a cosine-attention logit scale or a
    continuous position bias MLP), in any layout."""
    return any(marker in key for key in state_dict for marker in V2_MARKERS)


def _merging_stages(keys, pattern: str) -> set:
    return {int(m.group(1)) for k in keys for m in [re.match(pattern, k)] if m}


def detect_v2_layout(keys) -> str:
    """The V2 layout of backbone `keys` (any prefix removed)."""
    keys = list(keys)
    if any(k.startswith('features.') for k in keys):
        return 'torchvision'
    if any(k.startswith('layers.') for k in keys):
        merging = _merging_stages(keys, r'layers\.(\d+)\.downsample\.')
        return 'official' if 0 in merging or not merging and 'head.fc.weight' not in keys \
            else 'timm'
    if any(k.startswith('stages.') for k in keys):
        merging = _merging_stages(keys, r'stages\.(\d+)\.downsample\.')
        return 'mmpretrain' if merging and 0 not in merging else 'swin_mm'
    raise CheckpointError(f'expected a Swin V2 checkpoint (keys such as layers.0.blocks.0.attn.'
                          f'cpb_mlp.0.weight, stages.0..., or features.1.0...), found an '
                          f'unrecognised layout; first keys: {_first(keys, 5)}')


def unfold_to_official_order(weight: torch.Tensor) -> torch.Tensor:
    """A (2C, 4C) merging reduction weight from mmpretrain's ``nn.Unfold`` column order
    (c * 4 + k, k over row-major 2x2 offsets) to the official concatenation order
    (block * C + c, blocks (0,0), (1,0), (0,1), (1,1) as (row, col))."""
    out, four_c = weight.shape
    by_offset = weight.reshape(out, four_c // 4, 4).transpose(1, 2)  # (out, k, C)
    return by_offset[:, [0, 2, 1, 3]].reshape(out, four_c).contiguous()


def _renames_from_official(merging_shift: int):
    """(pattern, new name or function) for official/timm keys; `merging_shift` moves
    ``layers.i.downsample`` to our ``stages.(i + shift).downsample``."""
    block = r'layers\.(\d+)\.blocks\.(\d+)\.'
    return [
        (r'patch_embed\.proj\.' + _AFFINE, 'patch_embed.projection.{0}'),
        (r'patch_embed\.norm\.' + _AFFINE, 'patch_embed.norm.{0}'),
        (block + r'(norm1|norm2)\.' + _AFFINE, _BLOCK_SUFFIX + '{2}.{3}'),
        (block + r'attn\.' + _ATTENTION, _BLOCK_SUFFIX + 'attn.w_msa.{2}'),
        (block + r'mlp\.fc1\.' + _AFFINE, _BLOCK_SUFFIX + 'ffn.layers.0.0.{2}'),
        (block + r'mlp\.fc2\.' + _AFFINE, _BLOCK_SUFFIX + 'ffn.layers.1.{2}'),
        (r'layers\.(\d+)\.downsample\.' + _MERGING,
         lambda m: f'stages.{int(m.group(1)) + merging_shift}.downsample.{m.group(2)}'),
    ]


def _renames_from_torchvision():
    block = r'features\.(\d+)\.(\d+)\.'

    def stage_of(m, name):
        index = int(m.group(1))
        if index % 2 == 0:  # features.0 is the patch embedding; merging is even
            return None
        return f'stages.{(index - 1) // 2}.blocks.{m.group(2)}.{name}'
    return [
        (r'features\.0\.0\.' + _AFFINE, 'patch_embed.projection.{0}'),
        (r'features\.0\.2\.' + _AFFINE, 'patch_embed.norm.{0}'),
        (block + r'(norm1|norm2)\.' + _AFFINE,
         lambda m: stage_of(m, f'{m.group(3)}.{m.group(4)}')),
        (block + r'attn\.' + _ATTENTION, lambda m: stage_of(m, f'attn.w_msa.{m.group(3)}')),
        (block + r'mlp\.0\.' + _AFFINE, lambda m: stage_of(m, f'ffn.layers.0.0.{m.group(3)}')),
        (block + r'mlp\.3\.' + _AFFINE, lambda m: stage_of(m, f'ffn.layers.1.{m.group(3)}')),
        (r'features\.(\d+)\.' + _MERGING,
         lambda m: (f'stages.{int(m.group(1)) // 2 - 1}.downsample.{m.group(2)}'
                    if int(m.group(1)) % 2 == 0 and int(m.group(1)) > 0 else None)),
    ]


def _rename(key: str, renames) -> Optional[str]:
    for pattern, target in renames:
        match = re.fullmatch(pattern, key)
        if match:
            return target(match) if callable(target) else target.format(*match.groups())
    return None


def _is_derived(key: str) -> bool:
    return key.rsplit('.', 1)[-1] in DERIVED_BUFFERS


def _last_stage(keys) -> int:
    stages = _merging_stages(keys, r'stages\.(\d+)\.blocks\.')
    return max(stages) if stages else 0


def _renamed(inside: Dict[str, torch.Tensor], renames, conversion: Conversion,
             split_qkv_bias: bool = False) -> None:
    unexpected: List[str] = []
    for key, value in inside.items():
        if _is_derived(key) or key.startswith('head.'):
            conversion.dropped.append(key)
        elif split_qkv_bias and re.fullmatch(r'features\.\d+\.\d+\.attn\.qkv\.bias', key):
            # q third, ignored k third, v third (torchvision zeroes k in its forward)
            q_key = _rename(key[:-len('qkv.bias')] + 'q_bias', renames)
            c = value.shape[0] // 3
            conversion.backbone[q_key] = value[:c]
            conversion.backbone[q_key[:-len('q_bias')] + 'v_bias'] = value[2 * c:]
            conversion.renamed += 1
        elif re.fullmatch(r'norm\.' + _AFFINE, key):
            conversion.backbone[key] = value  # renamed below, once the stages are known
        else:
            new_key = _rename(key, renames)
            if new_key is None:
                unexpected.append(key)
                continue
            conversion.backbone[new_key] = value
            conversion.renamed += 1
    if unexpected:
        raise CheckpointError(f'Swin V2 {conversion.layout} layout: unexpected keys '
                              f'{_first(unexpected)}')
    last = _last_stage(conversion.backbone)
    for kind in ('weight', 'bias'):  # the final norm is the last stage's output norm
        if f'norm.{kind}' in conversion.backbone:
            conversion.backbone[f'norm{last}.{kind}'] = conversion.backbone.pop(f'norm.{kind}')
            conversion.renamed += 1


def _from_mmpretrain(inside: Dict[str, torch.Tensor], conversion: Conversion) -> None:
    """Merging moves from the start of stage i+1 to the end of stage i, its reduction
    from Unfold to official order (its norm acts after the reduction: no reorder)."""
    for key, value in inside.items():
        merging = re.fullmatch(r'stages\.(\d+)\.downsample\.' + _MERGING, key)
        if _is_derived(key):
            conversion.dropped.append(key)
        elif merging:
            part = merging.group(2)
            if part == 'reduction.weight':
                value = unfold_to_official_order(value)
                conversion.reordered += 1
            conversion.backbone[f'stages.{int(merging.group(1)) - 1}.downsample.{part}'] = value
            conversion.renamed += 1
        else:
            conversion.backbone[key] = value
            conversion.kept += 1


def _pass_through(inside: Dict[str, torch.Tensor], conversion: Conversion) -> None:
    for key, value in inside.items():
        if _is_derived(key):
            conversion.dropped.append(key)
        else:
            conversion.backbone[key] = value
            conversion.kept += 1


_CONVERTERS: Dict[str, Callable] = {
    'official': lambda inside, c: _renamed(inside, _renames_from_official(0), c),
    'timm': lambda inside, c: _renamed(inside, _renames_from_official(-1), c),
    'torchvision': lambda inside, c: _renamed(inside, _renames_from_torchvision(), c,
                                              split_qkv_bias=True),
    'mmpretrain': _from_mmpretrain,
    'swin_mm': _pass_through,
}


def convert_v2_state_dict(state_dict: Dict[str, torch.Tensor], layout: Optional[str] = None,
                          prefix: Optional[str] = None) -> Conversion:
    """Convert an unwrapped V2 state dict; `layout` forces a layout instead of detecting
    it; `prefix` is where the backbone keys live (default: 'backbone.' if present)."""
    if layout is not None and layout not in V2_LAYOUTS:
        raise CheckpointError(f'expected a Swin V2 layout among {", ".join(V2_LAYOUTS)}, '
                              f'found {layout!r}')
    state_dict = strip_prefix(state_dict, 'module.')
    prefix = _backbone_prefix(state_dict, prefix)
    inside = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    outside = {k: v for k, v in state_dict.items() if not k.startswith(prefix)}
    v1 = [k for k in inside if k.endswith('relative_position_bias_table')]
    if v1 and not is_v2_state_dict(inside):
        raise CheckpointError(f'expected a Swin V2 checkpoint, found Swin v1 (keys '
                              f'{_first(v1)}); load it into SwinBackbone')
    layout = layout or detect_v2_layout(inside)
    conversion = Conversion(layout=layout, prefix=prefix or BACKBONE_PREFIX, backbone={})
    classifier = [k for k in outside if k.startswith('head.')]
    conversion.dropped += classifier
    conversion.others = {k: v for k, v in outside.items() if k not in classifier}
    conversion.kept += len(conversion.others)
    _CONVERTERS[layout](inside, conversion)
    conversion.windows, conversion.pretrained_windows = _stage_windows(
        inside, _last_stage(conversion.backbone) + 1)
    return conversion


def _stage_windows(inside: Dict[str, torch.Tensor], num_stages: int):
    """(window, pretrained window) per stage from the coordinate tables in `inside`, each
    None unless every stage has tables that agree (and, for the pretrained windows,
    whose values say). The official code shrinks a window to a smaller map, so stages
    may differ. Only reported (swin2mm): loading uses no table, so a malformed one only
    leaves the windows unknown."""
    found: Dict[int, set] = {}
    for key, value in inside.items():
        match = _COORDS_TABLE.fullmatch(key)
        if match:
            index = int(match.group(2))
            stage = (index - 1) // 2 if match.group(1) == 'features' else index
            try:
                windows = (window_of_coords_table(value, key),
                           pretrained_window_of_coords_table(value, key))
            except CheckpointError:
                return None, None
            found.setdefault(stage, set()).add(windows)
    if sorted(found) != list(range(num_stages)) or any(len(w) != 1 for w in found.values()):
        return None, None
    pairs = [next(iter(found[stage])) for stage in range(num_stages)]
    pretrained = tuple(p for _, p in pairs)
    return tuple(w for w, _ in pairs), None if None in pretrained else pretrained


def to_v2_backbone_state_dict(checkpoint, prefix: Optional[str] = None):
    """The backbone tensors of a loaded V2 `checkpoint` (wrapped or bare) in this
    plugin's names, and the layout's name."""
    conversion = convert_v2_state_dict(unwrap(checkpoint), prefix=prefix)
    return conversion.backbone, conversion.layout


def fit_v2_state_dict(state_dict: Dict[str, torch.Tensor], prefix: str = '') -> None:
    """Convert the entries of `state_dict` under `prefix` to this plugin's V2 names, in
    place (the load hook's job; `state_dict` is the loader's own copy)."""
    inside = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not inside:
        return
    converted = convert_v2_state_dict(inside, prefix='')
    for key in inside:
        del state_dict[prefix + key]
    state_dict.update({prefix + k: v for k, v in converted.backbone.items()})
