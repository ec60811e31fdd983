"""The SwinV2Backbone arguments a converted Swin V2 state dict implies.

The parts every Swin variant shares are read by :mod:`.model_arguments`; here the heads
(from the logit scales), the q/v biases, and the windows: V2 weights hold no
window-sized tensor, so the window and pretrained window come only from the derived
buffers a file may carry (:attr:`Conversion.windows`, read by
:mod:`swin_mm.checkpoints.v2_layouts`), and are None (unknown) without them.
"""
import re
from typing import Optional, Sequence, Tuple, Union

from ..checkpoints.layouts import Conversion
from .model_arguments import first_blocks, shared_architecture

# The window a file's weights are checked at when it does not say its own: V2 weights
# fit every window.
CHECK_WINDOW = 8

Window = Union[int, Tuple[int, int]]
_EXTRA_NORM = re.compile(r'stages\.\d+\.blocks\.(\d+)\.norm3\.weight')


def _side_or_pair(pair: Tuple[int, int]) -> Window:
    return pair[0] if pair[0] == pair[1] else tuple(pair)


def _per_stage(pairs: Sequence[Tuple[int, int]]) -> Union[Window, Tuple[Window, ...]]:
    """One value where every stage has the same window, else one per stage."""
    if len(set(pairs)) == 1:
        return _side_or_pair(pairs[0])
    return tuple(_side_or_pair(pair) for pair in pairs)


def _extra_norm_every(backbone) -> int:
    """n of ``extra_norm_every_n_blocks``: the first block (j + 1) with a ``norm3``
    (the paper's H and G sizes), 0 without any; :func:`check_shapes` then checks that
    every n-th block of every stage has one."""
    blocks = [int(m.group(1)) + 1 for key in backbone for m in [_EXTRA_NORM.fullmatch(key)] if m]
    return min(blocks, default=0)


def infer_v2_architecture(conversion: Conversion) -> dict:
    """SwinV2Backbone keyword arguments matching `conversion.backbone` (this plugin's V2
    names). ``window_size`` is the largest stage window in the file (the official code
    shrinks windows at small maps) and ``pretrained_window_size`` each stage's
    normalising window as the coordinate tables' values say; None where unknown."""
    backbone = conversion.backbone
    shared = shared_architecture(backbone)
    scales = first_blocks(backbone, len(shared['depths']), 'attn.w_msa.logit_scale')
    windows: Optional[Sequence[Tuple[int, int]]] = conversion.windows
    largest = None if windows is None else (max(w[0] for w in windows),
                                            max(w[1] for w in windows))
    pretrained = conversion.pretrained_windows
    return dict(
        shared,
        num_heads=tuple(scale.shape[0] for scale in scales.values()),
        window_size=None if largest is None else _side_or_pair(largest),
        pretrained_window_size=None if pretrained is None else _per_stage(pretrained),
        qkv_bias='stages.0.blocks.0.attn.w_msa.q_bias' in backbone,
        extra_norm_every_n_blocks=_extra_norm_every(backbone),
    )


def v2_model_arguments(architecture: dict) -> dict:
    """Arguments that build the SwinV2Backbone of `architecture` (unknown windows: the
    check window, pretrained window 0)."""
    window, pretrained = architecture['window_size'], architecture['pretrained_window_size']
    return dict(architecture, window_size=CHECK_WINDOW if window is None else window,
                pretrained_window_size=0 if pretrained is None else pretrained)
