"""Window geometry computed from the map's shape at run time: the graph-capture path.

torch.export, ONNX and torch.jit.trace record these ops with sizes that are
expressions of the input shape, so one captured graph is right at every size. The same
gather/scatter as :class:`.CachedWindowGeometry`, but its indices are arithmetic on
``arange`` (window slot -> shifted padded position -> source token): no pad, roll,
crop or permute of a map, whose size checks torch.export would turn into guards on the
input size. Plain public ops throughout: they are their own reference.
"""
from typing import Tuple

import torch

from .shift_mask import mask_between, region, window_count


def remainder(value: torch.Tensor, size) -> torch.Tensor:
    """``value % size`` for a traced `size`, as floor division: the dynamo ONNX exporter
    cannot translate a remainder by a symbolic scalar (torch 2.13, onnxscript 0.7)."""
    return value - value // size * size


def _shifted_position(window_index: torch.Tensor, offset: torch.Tensor, windows_per_row,
                      window: Tuple[int, int]):
    """(row, column) in the shifted, padded map of token `offset` of window `window_index`."""
    (wh, ww), per_row = window, windows_per_row
    return (window_index // per_row * wh + offset // ww,
            remainder(window_index, per_row) * ww + offset % ww)


class ShapeGenericGeometry:
    """The :class:`~swin_mm.geometry.WindowGeometry` of a (h, w) map, from its
    (possibly traced) shape.

    Args:
        hw (tuple): the map's (H, W), ints or traced sizes.
        window (tuple[int, int]): window (height, width) in tokens.
        shift (tuple[int, int]): cyclic shift in tokens; (0, 0) for no shift (no mask).
        device (torch.device): where the index tensors are made.
    """

    def __init__(self, hw, window: Tuple[int, int], shift: Tuple[int, int], device):
        (h, w), (wh, ww), (sh, sw) = tuple(hw), tuple(window), tuple(shift)
        self.hw, self.window = (h, w), (wh, ww)
        nh, nw = window_count(h, wh), window_count(w, ww)
        hp, wp, tokens = nh * wh, nw * ww, wh * ww
        self.num_windows = nh * nw
        slot = torch.arange(self.num_windows * tokens, device=device)
        row, col = _shifted_position(slot // tokens, slot % tokens, nw, window)
        source_row, source_col = remainder(row + sh, hp), remainder(col + sw, wp)
        self.real = ((source_row < h) & (source_col < w)).unsqueeze(-1)
        self.gather = torch.where(self.real.squeeze(-1), source_row * w + source_col, 0)
        token = torch.arange(h * w, device=device)
        to_row = remainder(token // w + hp - sh, hp)
        to_col = remainder(remainder(token, w) + wp - sw, wp)
        self.scatter = ((to_row // wh * nw + to_col // ww) * tokens
                        + to_row % wh * ww + to_col % ww)
        self.mask = None
        if sh or sw:  # (num_windows, N) by broadcasting: a view would guard on its size
            row, col = _shifted_position(torch.arange(self.num_windows, device=device)[:, None],
                                         torch.arange(tokens, device=device)[None, :], nw, window)
            self.mask = mask_between(region(row, hp, wh, sh) * 3 + region(col, wp, ww, sw))

    def partition(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B * num_windows, h * w, C): pad bottom/right, shift, cut."""
        b, c = x.shape[0], x.shape[-1]
        windows = torch.where(self.real, x.flatten(1, 2).index_select(1, self.gather), 0.)
        return windows.view(b * self.num_windows, self.window[0] * self.window[1], c)

    def merge(self, windows: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`partition`: (B * num_windows, h * w, C) -> (B, H, W, C)."""
        b, c = windows.shape[0] // self.num_windows, windows.shape[-1]
        by_slot = windows.view(b, -1, c)
        return by_slot.index_select(1, self.scatter).view(b, *self.hw, c)
