"""Every Swin v1 checkpoint layout -> this plugin's (mmdet/mmseg) layout.

The one place that knows the layouts; used by the ``swin2mm`` command and by
``SwinBackbone``'s loading alike (its ``init_cfg`` and its load_state_dict hook).

Layouts (``LAYOUTS``):
  official      microsoft/Swin-Transformer classification ({'model': ...}, ``layers.*``,
                merging at the end of stage i, final ``norm``, ``head``).
  official-det  the official detection/segmentation releases (Swin-Det / Swin-Seg,
                mmdet 2.x / mmseg 0.x): official names under ``backbone.``, ``norm0..3``,
                plus neck/head keys, which are kept unchanged.
  timm          timm's Swin v1: official names, merging at the start of stage i+1,
                ``head.fc``.
  mmpretrain    ``backbone.stages...`` (already our names) plus a ``head.*`` classifier.
  mmdet         mmdet 3.x / mmseg 1.x (this plugin's own names): passed through.
"""
import math
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

from ..geometry.relative_position import relative_position_index
from .errors import CheckpointError
from .implied_sizes import square_side, window_of_bias_table

LAYOUTS = ('official', 'official-det', 'timm', 'mmpretrain', 'mmdet')
CLASSIFICATION_LAYOUTS = ('official', 'timm', 'mmpretrain')
BACKBONE_PREFIX = 'backbone.'

_V2_MARKERS = ('cpb_mlp', 'logit_scale', 'relative_coords_table', 'q_bias')
_DIGITS = r'(\d+)'
_BLOCK = rf'layers\.{_DIGITS}\.blocks\.{_DIGITS}\.'

# Official/timm name -> our name ('{0}', '{1}', ... are the pattern's groups).
_RENAMES = [
    (r'patch_embed\.proj\.(weight|bias)', 'patch_embed.projection.{0}'),
    (r'patch_embed\.norm\.(weight|bias)', 'patch_embed.norm.{0}'),
    (r'absolute_pos_embed', 'absolute_pos_embed'),
    (_BLOCK + r'(norm1|norm2)\.(weight|bias)', 'stages.{0}.blocks.{1}.{2}.{3}'),
    (_BLOCK + r'attn\.(qkv|proj)\.(weight|bias)', 'stages.{0}.blocks.{1}.attn.w_msa.{2}.{3}'),
    (_BLOCK + r'attn\.relative_position_bias_table',
     'stages.{0}.blocks.{1}.attn.w_msa.relative_position_bias_table'),
    (_BLOCK + r'mlp\.fc1\.(weight|bias)', 'stages.{0}.blocks.{1}.ffn.layers.0.0.{2}'),
    (_BLOCK + r'mlp\.fc2\.(weight|bias)', 'stages.{0}.blocks.{1}.ffn.layers.1.{2}'),
    (r'(norm\d+)\.(weight|bias)', '{0}.{1}'),
]
# Derived buffers (rebuilt from the window) and classifier heads.
_DROPS = [_BLOCK + r'attn\.relative_position_index', _BLOCK + r'attn_mask', r'head\..*']
_DOWNSAMPLE = re.compile(r'layers\.(\d+)\.downsample\.(reduction|norm)\.(weight|bias)')
_FINAL_NORM = re.compile(r'norm\.(weight|bias)')


@dataclass
class Conversion:
    """A checkpoint's tensors in this plugin's layout, with what was done to them."""
    layout: str
    prefix: str                          # where the backbone keys live in the file
    backbone: Dict[str, torch.Tensor]    # this plugin's names, no prefix
    others: Dict[str, torch.Tensor] = field(default_factory=dict)  # neck/heads, unchanged
    renamed: int = 0
    reordered: int = 0
    generated: int = 0
    dropped: List[str] = field(default_factory=list)
    kept: int = 0
    pretrain_img_size: Optional[int] = None
    # Swin V2: each stage's window and pretrained window, (h, w), as the file's relative
    # coordinates tables say (None for files without them, or whose values do not say).
    windows: Optional[Tuple[Tuple[int, int], ...]] = None
    pretrained_windows: Optional[Tuple[Tuple[int, int], ...]] = None

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """Backbone under its prefix plus every other kept tensor, ready to save."""
        merged = {self.prefix + k: v for k, v in self.backbone.items()}
        merged.update(self.others)
        return merged


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


def _first(keys, count: int = 3) -> str:
    keys = list(keys)
    return ', '.join(keys[:count]) + (', ...' if len(keys) > count else '')


def _split(state_dict, prefix: str):
    """(keys under prefix with it removed, all other keys)."""
    inside = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    outside = {k: v for k, v in state_dict.items() if not k.startswith(prefix)}
    return inside, outside


def _refuse_foreign(state_dict) -> None:
    """Name the Swin layouts we recognise but do not convert."""
    v2 = [k for k in state_dict if any(marker in k for marker in _V2_MARKERS)]
    if v2:
        raise CheckpointError(f'expected a Swin v1 checkpoint, found Swin v2 (keys {_first(v2)}); '
                              f'load it into SwinV2Backbone')
    if 'features.0.0.weight' in state_dict and any('.attn.qkv.' in k for k in state_dict):
        raise CheckpointError(f'expected a Swin v1 checkpoint in the official, timm, '
                              f'mmpretrain or mmdet layout, found the torchvision layout '
                              f'(keys {_first(state_dict)}); not supported')


def _backbone_prefix(state_dict, prefix: Optional[str]) -> str:
    """Where the backbone keys live: the given prefix, 'backbone.' in whole-model
    checkpoints, or '' in bare backbone state dicts."""
    if prefix is None:
        return BACKBONE_PREFIX if any(
            k.startswith(BACKBONE_PREFIX + 'patch_embed.') for k in state_dict) else ''
    return prefix if any(k.startswith(prefix) for k in state_dict) else ''


def detect_layout(state_dict, prefix: str) -> str:
    """The layout name of an unwrapped state dict whose backbone keys are under `prefix`."""
    inside = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
    if any(k.startswith(('patch_embed.projection.', 'stages.')) for k in inside):
        classifier = prefix and any(k.startswith('head.') for k in state_dict)
        return 'mmpretrain' if classifier else 'mmdet'
    if any(k.startswith(('patch_embed.proj.', 'layers.')) for k in inside):
        if prefix:
            return 'official-det'
        downsamples = {int(m.group(1)) for k in inside for m in [_DOWNSAMPLE.match(k)] if m}
        timm = 'head.fc.weight' in state_dict or (downsamples and 0 not in downsamples)
        return 'timm' if timm else 'official'
    raise CheckpointError(f'expected a Swin v1 checkpoint (keys such as patch_embed.proj.weight '
                          f'and layers.0.blocks.0.attn.qkv.weight, or patch_embed.projection.'
                          f'weight and stages.0...), found an unrecognised layout; first keys: '
                          f'{_first(state_dict, 5)}')


def _merge_order(tensor: torch.Tensor) -> torch.Tensor:
    """Official 2x2 concatenation order -> mmcv Unfold order along the last dimension.

    Official channel index: block * C + c with blocks (0,0), (1,0), (0,1), (1,1) as
    (row, col); Unfold's: c * 4 + row * 2 + col. Works for the (out, 4C) reduction weight
    and the (4C,) norm parameters alike.
    """
    *lead, four_c = tensor.shape
    blocks = tensor.reshape(*lead, 4, four_c // 4)[..., [0, 2, 1, 3], :]
    return blocks.transpose(-1, -2).reshape(*lead, four_c).contiguous()


def _rename(key: str) -> Optional[str]:
    for pattern, template in _RENAMES:
        match = re.fullmatch(pattern, key)
        if match:
            return template.format(*match.groups())
    return None


def _pretrain_size(official: Dict[str, torch.Tensor]) -> Optional[int]:
    """Training image size from stage 0's shift mask: (image/patch/window)^2 windows."""
    mask = official.get('layers.0.blocks.1.attn_mask')
    projection = official.get('patch_embed.proj.weight')
    if mask is None or projection is None or mask.dim() != 3:
        return None
    grid = math.isqrt(mask.shape[0])
    if grid * grid != mask.shape[0]:  # trained at a non-square size: no single number
        return None
    window = square_side(mask.shape[1], 'attn_mask window (N = w * w tokens)')
    return grid * window * projection.shape[-1]


def _from_official(official: Dict[str, torch.Tensor], merging_shift: int,
                   conversion: Conversion) -> None:
    """Fill `conversion.backbone` from official-named tensors.

    ``merging_shift`` is where merging layers sit relative to ours: 0 for the official
    code (end of stage i), -1 for timm (start of stage i+1).
    """
    stages = {int(m.group(1)) for k in official for m in [re.match(r'layers\.(\d+)\.', k)] if m}
    last = max(stages) if stages else 0
    unexpected = []
    for key, value in official.items():
        downsample = _DOWNSAMPLE.fullmatch(key)
        if downsample:
            stage, part, kind = downsample.groups()
            new_key = f'stages.{int(stage) + merging_shift}.downsample.{part}.{kind}'
            conversion.backbone[new_key] = _merge_order(value)
            conversion.renamed += 1
            conversion.reordered += 1
        elif _FINAL_NORM.fullmatch(key):
            _rename_final_norm(key, value, last, conversion)
        elif any(re.fullmatch(pattern, key) for pattern in _DROPS):
            conversion.dropped.append(key)
        elif _rename(key) is not None:
            new_key = _rename(key)
            if new_key == 'absolute_pos_embed' and value.dim() == 4:  # Swin-Det: (1, C, H, W)
                value = value.flatten(2).transpose(1, 2).contiguous()
            conversion.backbone[new_key] = value
            if new_key == key:
                conversion.kept += 1
            else:
                conversion.renamed += 1
        else:
            unexpected.append(key)
    if unexpected:
        raise CheckpointError(f'{conversion.layout} layout: unexpected keys {_first(unexpected)}')
    conversion.pretrain_img_size = _pretrain_size(official)
    _add_position_indices(conversion)


def _add_position_indices(conversion: Conversion) -> None:
    """relative_position_index is derived from the window, not learned: rebuild it for
    every block so the result loads strictly into mmdet/mmseg models too."""
    suffix = 'relative_position_bias_table'
    for key, table in list(conversion.backbone.items()):
        if key.endswith(suffix):
            window = (window_of_bias_table(table, key),) * 2
            index_key = key[:-len(suffix)] + 'relative_position_index'
            conversion.backbone[index_key] = relative_position_index(window)
            conversion.generated += 1


def _rename_final_norm(key: str, value: torch.Tensor, last: int,
                       conversion: Conversion) -> None:
    """The classification models' final ``norm`` is our last stage's output norm."""
    conversion.backbone[f'norm{last}.' + key.split('.')[-1]] = value
    conversion.renamed += 1


def _tidy_converted(state_dict: Dict[str, torch.Tensor], conversion: Conversion) -> None:
    """Pass this plugin's names through, minus what mmdet's swin2mmdet / mmseg's
    swin2mmseg (and mmcls before v2) leave behind: the official final ``norm`` (-> the
    last stage's output norm) and the ``attn_mask`` buffers."""
    stages = {int(m.group(1)) for k in state_dict for m in [re.match(r'stages\.(\d+)\.', k)] if m}
    last = max(stages) if stages else 0
    for key, value in state_dict.items():
        if _FINAL_NORM.fullmatch(key) and f'norm{last}.weight' not in state_dict:
            _rename_final_norm(key, value, last, conversion)
        elif re.fullmatch(r'stages\.\d+\.blocks\.\d+\.attn_mask', key):
            conversion.dropped.append(key)
        else:
            conversion.backbone[key] = value
            conversion.kept += 1


def convert_state_dict(state_dict: Dict[str, torch.Tensor], layout: Optional[str] = None,
                       prefix: Optional[str] = None) -> Conversion:
    """Convert an unwrapped state dict; `layout` forces a layout instead of detecting it."""
    if layout is not None and layout not in LAYOUTS:
        raise CheckpointError(f'expected a layout among {", ".join(LAYOUTS)}, found {layout!r}')
    state_dict = strip_prefix(state_dict, 'module.')
    _refuse_foreign(state_dict)
    prefix = _backbone_prefix(state_dict, prefix)
    layout = layout or detect_layout(state_dict, prefix)
    inside, outside = _split(state_dict, prefix)
    conversion = Conversion(layout=layout, prefix=prefix or BACKBONE_PREFIX, backbone={})
    classifier = {k: v for k, v in outside.items() if k.startswith('head.')} \
        if layout in CLASSIFICATION_LAYOUTS else {}
    conversion.dropped += list(classifier)
    conversion.others = {k: v for k, v in outside.items() if k not in classifier}
    conversion.kept += len(conversion.others)
    if layout in ('mmdet', 'mmpretrain'):
        conversion.prefix = prefix
        _tidy_converted(inside, conversion)
    else:
        _from_official(inside, -1 if layout == 'timm' else 0, conversion)
    return conversion


def convert_checkpoint(checkpoint, layout: Optional[str] = None,
                       prefix: Optional[str] = None) -> Conversion:
    """Convert a loaded checkpoint (wrapped in 'state_dict'/'model' or bare)."""
    return convert_state_dict(unwrap(checkpoint), layout, prefix)


def to_backbone_state_dict(checkpoint, prefix: Optional[str] = None
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
    """The backbone tensors of `checkpoint` in this plugin's layout, and the layout's name."""
    conversion = convert_checkpoint(checkpoint, prefix=prefix)
    return conversion.backbone, conversion.layout
