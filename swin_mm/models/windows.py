"""Window geometry of one Swin stage: padding, cyclic shift, partition and shift mask.

Everything here depends only on the feature-map size, the window and the shift, so
:class:`WindowGeometry` is built once per input shape and stage and then shared by
every block of the stage (the peers rebuild the mask in every block on every forward).

Pad, cyclic shift and partition are one permutation of token positions, so they are
done as one ``index_select`` with a cached index (the peers copy the map three times:
``F.pad``, ``torch.roll`` and the partition permute, and three more times to undo them).
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from ..kernels import Kernels

# Logit between tokens from different regions of a shifted window. The reference
# implementations use -100, whose probability exp(-100) ~ 4e-44 is a subnormal float:
# the same result to float64 precision, but x86 CPUs run exp and matmuls on subnormals
# 30-60x slower. -inf gives exact zeros; no row is all -inf (a token shares its region).
MASKED_LOGIT = float('-inf')


def relative_position_index(window: Tuple[int, int]) -> torch.Tensor:
    """(N, N) index into the ((2h-1)*(2w-1), heads) bias table, N = h*w.

    Entry (i, j) identifies the offset of token j from token i inside a window.
    """
    h, w = window
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    coords = torch.stack((rows.flatten(), cols.flatten()))        # 2, N
    offsets = coords[:, :, None] - coords[:, None, :]              # 2, N, N
    return (offsets[0] + h - 1) * (2 * w - 1) + (offsets[1] + w - 1)


def _region_labels(length: int, window: int, shift: int) -> torch.Tensor:
    """Label the three bands a cyclic shift creates along one axis (0, 1, 2)."""
    labels = torch.zeros(length, dtype=torch.long)
    labels[length - window:] = 1
    labels[length - shift:] = 2
    return labels


def _to_windows(grid: torch.Tensor, window: Tuple[int, int],
                shift: Tuple[int, int]) -> torch.Tensor:
    """(Hp, Wp) grid -> (num_windows, h * w): shift cyclically, then cut into windows."""
    (hp, wp), (wh, ww) = grid.shape, window
    grid = torch.roll(grid, shifts=(-shift[0], -shift[1]), dims=(0, 1))
    return grid.view(hp // wh, wh, wp // ww, ww).transpose(1, 2).reshape(-1, wh * ww)


def shift_window_mask(padded_hw: Tuple[int, int], window: Tuple[int, int],
                      shift: Tuple[int, int]) -> torch.Tensor:
    """(num_windows, N, N) additive mask: MASKED_LOGIT between tokens of different regions.

    Regions are the bands a cyclic shift wraps around (the same 3x3 labelling as the
    official code), computed on the padded map as the references do.
    """
    (hp, wp), (wh, ww), (sh, sw) = padded_hw, window, shift
    label = (_region_labels(hp, wh, sh)[:, None] * 3 + _region_labels(wp, ww, sw)[None, :])
    label = _to_windows(label, window, (0, 0))  # labels are already in shifted coordinates
    differs = label[:, :, None] != label[:, None, :]
    return torch.zeros(differs.shape).masked_fill_(differs, MASKED_LOGIT)


@dataclass(frozen=True)
class WindowGeometry:
    """How a (H, W) map is cut into windows for one block kind (shifted or not).

    ``gather`` maps each window slot to the source token (padding slots read token 0 and
    are zeroed afterwards: they are listed in ``padding_slots``); ``scatter`` maps each
    token back to its window slot, which also crops the padding away.
    """
    hw: Tuple[int, int]
    window: Tuple[int, int]
    shift: Tuple[int, int]
    mask: Optional[torch.Tensor]           # (num_windows, N, N) or None without shift
    gather: torch.Tensor                   # (Hp * Wp,) token index per window slot
    scatter: torch.Tensor                  # (H * W,) window slot per token
    padding_slots: Optional[torch.Tensor]  # window slots that hold padding, or None

    @classmethod
    def build(cls, hw, window, shift, device) -> 'WindowGeometry':
        (h, w), window, shift = tuple(hw), tuple(window), tuple(shift)
        padded = tuple(-(-size // win) * win for size, win in zip((h, w), window))
        rows, cols = torch.meshgrid(torch.arange(padded[0]), torch.arange(padded[1]),
                                    indexing='ij')
        real = (rows < h) & (cols < w)
        source = torch.where(real, rows * w + cols, 0)
        gather = _to_windows(source, window, shift).flatten()
        slot_of_position = torch.empty(padded[0] * padded[1], dtype=torch.long)
        slot_of_position[_to_windows(rows * padded[1] + cols, window, shift).flatten()] = \
            torch.arange(slot_of_position.numel())
        scatter = slot_of_position.view(padded)[:h, :w].flatten()
        # Stable sort puts the padding slots (real == 0) first; unlike nonzero() its
        # output size is static, so torch.compile traces this without a graph break.
        num_padding = padded[0] * padded[1] - h * w
        is_real = _to_windows(real, window, shift).flatten().to(torch.uint8)
        padding_slots = torch.sort(is_real, stable=True).indices[:num_padding]
        mask = shift_window_mask(padded, window, shift).to(device) if any(shift) else None
        return cls((h, w), window, shift, mask, gather.to(device), scatter.to(device),
                   padding_slots.to(device) if num_padding else None)

    def partition(self, x: torch.Tensor, kernels: Kernels) -> torch.Tensor:
        """(B, H, W, C) -> (B * num_windows, h * w, C): pad bottom/right, shift, cut."""
        return kernels.partition(x, self.gather, self.scatter, self.padding_slots,
                                 self.window[0] * self.window[1])

    def merge(self, windows: torch.Tensor, kernels: Kernels) -> torch.Tensor:
        """Inverse of :meth:`partition`: (B * num_windows, h * w, C) -> (B, H, W, C)."""
        return kernels.merge(windows, self.gather, self.scatter, self.padding_slots, self.hw)
