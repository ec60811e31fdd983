"""Window geometry from cached index tables: the eager path.

Pad, cyclic shift and partition are one permutation of token positions, so they are
one gather with a table computed once per (map size, window, shift, device) and shared
by every block of the stage and every later forward at that size (the peers copy the
map three times, ``F.pad``, ``torch.roll`` and the partition permute, and three more
times to undo them, and rebuild the mask in every block). The gather itself runs
through the selected kernels (:mod:`swin_mm.kernels.partition`).

The tables are computed from Python ints, so a captured graph would bake them in:
:class:`.ShapeGenericGeometry` is the capture path.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from ..kernels import Kernels
from .shift_mask import shift_window_mask, to_windows, window_count


@dataclass(frozen=True)
class WindowTables:
    """How a (H, W) map is cut into windows for one block kind (shifted or not); built
    by :meth:`build` from the map size `hw`, the `window` and the `shift` (pairs, in
    tokens) on a `device`.

    ``gather`` maps each window slot to the source token (padding slots read token 0 and
    are zeroed afterwards: they are listed in ``padding_slots``); ``scatter`` maps each
    token back to its window slot, which also crops the padding away.
    """
    hw: Tuple[int, int]
    window_tokens: int                     # N = h * w
    mask: Optional[torch.Tensor]           # (num_windows, N, N) or None without shift
    gather: torch.Tensor                   # (Hp * Wp,) token index per window slot
    scatter: torch.Tensor                  # (H * W,) window slot per token
    padding_slots: Optional[torch.Tensor]  # window slots that hold padding, or None

    @classmethod
    def build(cls, hw, window, shift, device) -> 'WindowTables':
        (h, w), window, shift = tuple(hw), tuple(window), tuple(shift)
        padded = tuple(window_count(size, win) * win for size, win in zip((h, w), window))
        rows, cols = torch.meshgrid(torch.arange(padded[0]), torch.arange(padded[1]),
                                    indexing='ij')
        real = (rows < h) & (cols < w)
        source = torch.where(real, rows * w + cols, 0)
        gather = to_windows(source, window, shift).flatten()
        slot_of_position = torch.empty(padded[0] * padded[1], dtype=torch.long)
        slot_of_position[to_windows(rows * padded[1] + cols, window, shift).flatten()] = \
            torch.arange(slot_of_position.numel())
        scatter = slot_of_position.view(padded)[:h, :w].flatten()
        # Stable sort puts the padding slots (real == 0) first; unlike nonzero() its
        # output size is static, so torch.compile traces this without a graph break.
        num_padding = padded[0] * padded[1] - h * w
        is_real = to_windows(real, window, shift).flatten().to(torch.uint8)
        padding_slots = torch.sort(is_real, stable=True).indices[:num_padding]
        mask = shift_window_mask(padded, window, shift).to(device) if any(shift) else None
        return cls((h, w), window[0] * window[1], mask, gather.to(device),
                   scatter.to(device), padding_slots.to(device) if num_padding else None)


class CachedWindowGeometry:
    """The :class:`~swin_mm.geometry.WindowGeometry` of cached `tables`, partitioned and
    merged by the `kernels` selected for this forward.

    Args:
        tables (WindowTables): the map's index tables and shift mask.
        kernels (Kernels): whose ``partition`` and ``merge`` run the gathers.
    """

    def __init__(self, tables: WindowTables, kernels: Kernels):
        self.tables, self.kernels = tables, kernels
        self.mask = tables.mask

    def partition(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B * num_windows, h * w, C): pad bottom/right, shift, cut."""
        return self.kernels.partition(x, self.tables)

    def merge(self, windows: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`partition`: (B * num_windows, h * w, C) -> (B, H, W, C)."""
        return self.kernels.merge(windows, self.tables)
