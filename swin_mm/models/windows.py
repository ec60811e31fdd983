"""Window geometry of one Swin stage: padding, cyclic shift, partition and shift mask.

Everything here depends only on the feature-map size, the window and the shift, so
:class:`WindowGeometry` is built once per input shape and stage and then shared by
every block of the stage (the peers rebuild the mask in every block on every forward).

Pad, cyclic shift and partition are one permutation of token positions, so they are
done as one ``index_select`` with a cached index (the peers copy the map three times:
``F.pad``, ``torch.roll`` and the partition permute, and three more times to undo them).

Those indices are computed from Python ints, so a traced or exported graph would bake
them in and be wrong at any other size. While a graph is being captured
(:func:`capturing_graph`), :class:`ShapeGenericGeometry` does the same work in public
ops whose sizes are expressions of the input shape (pad, roll, view, permute, crop),
so one exported graph serves every input size.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

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


def _region_labels(length, window: int, shift: int, device=None) -> torch.Tensor:
    """Label the three bands a cyclic shift creates along one axis (0, 1, 2), by
    comparisons with `length` (so it may be a traced or symbolic size)."""
    position = torch.arange(length, device=device)
    return (position >= length - window).long() + (position >= length - shift).long()


def _to_windows(grid: torch.Tensor, window: Tuple[int, int],
                shift: Tuple[int, int]) -> torch.Tensor:
    """(Hp, Wp) grid -> (num_windows, h * w): shift cyclically, then cut into windows."""
    (hp, wp), (wh, ww) = grid.shape, window
    if any(shift):
        grid = torch.roll(grid, shifts=(-shift[0], -shift[1]), dims=(0, 1))
    return grid.view(hp // wh, wh, wp // ww, ww).transpose(1, 2).reshape(-1, wh * ww)


def shift_window_mask(padded_hw, window: Tuple[int, int], shift: Tuple[int, int],
                      device=None) -> torch.Tensor:
    """(num_windows, N, N) additive mask: MASKED_LOGIT between tokens of different regions.

    Regions are the bands a cyclic shift wraps around (the same 3x3 labelling as the
    official code), computed on the padded map as the references do. `padded_hw` may
    be traced or symbolic sizes (multiples of the window).
    """
    (hp, wp), (wh, ww), (sh, sw) = padded_hw, window, shift
    label = (_region_labels(hp, wh, sh, device)[:, None] * 3
             + _region_labels(wp, ww, sw, device)[None, :])
    label = _to_windows(label, window, (0, 0))  # labels are already in shifted coordinates
    differs = label[:, :, None] != label[:, None, :]
    return torch.zeros(differs.shape, device=device).masked_fill_(differs, MASKED_LOGIT)


def window_count(size, window: int):
    """ceil(size / window), in the one form torch.export and ONNX keep symbolic: the
    padded size is then ``count * window``, so views agree with the pad exactly."""
    return (size + window - 1) // window


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
        padded = tuple(window_count(size, win) * win for size, win in zip((h, w), window))
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


def capturing_graph(x: torch.Tensor) -> bool:
    """Whether `x` flows through a graph capture that must stay valid at other sizes:
    torch.onnx export, torch.jit tracing, torch.export (all its modes), or symbolic
    shapes in any tracer. Plain torch.compile is not one: it recompiles per size.
    Public APIs only, each where the running torch has it; costs a few microseconds."""
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or _is_exporting()
            or isinstance(x.shape[-1], torch.SymInt))


def _resolve_is_exporting():
    """torch.compiler.is_exporting (torch 2.5+); before it, torch.export runs through
    dynamo with symbolic shapes, which the SymInt test of capturing_graph sees."""
    compiler = getattr(torch, 'compiler', None)
    return getattr(compiler, 'is_exporting', lambda: False)


_is_exporting = _resolve_is_exporting()


class ShapeGenericGeometry:
    """:class:`WindowGeometry`'s partition, merge and mask, computed from the map's
    shape at run time in public ops instead of from cached index tables.

    Exists for graph capture (:func:`capturing_graph`): torch.export, ONNX and
    torch.jit.trace record these ops with sizes that are expressions of the input
    shape, so the captured graph is right at every size. Padding amounts are
    branch-free (zero where none is needed), so torch.export adds no guard on them.
    Eager runs keep :class:`WindowGeometry`, which is faster. `kernels` are accepted
    for the same interface and unused: these ops are their own reference.
    """

    def __init__(self, hw, window: Tuple[int, int], shift: Tuple[int, int], device):
        self.hw, self.window, self.shift = tuple(hw), tuple(window), tuple(shift)
        self.counts = tuple(window_count(size, win) for size, win in zip(self.hw, window))
        padded = tuple(n * win for n, win in zip(self.counts, window))
        self.mask = shift_window_mask(padded, window, shift, device) if any(shift) else None

    def partition(self, x: torch.Tensor, kernels=None) -> torch.Tensor:
        """(B, H, W, C) -> (B * num_windows, h * w, C): pad bottom/right, shift, cut."""
        (h, w), (nh, nw), (wh, ww), c = self.hw, self.counts, self.window, x.shape[-1]
        x = F.pad(x, (0, 0, 0, nw * ww - w, 0, nh * wh - h))
        if any(self.shift):
            x = torch.roll(x, shifts=(-self.shift[0], -self.shift[1]), dims=(1, 2))
        x = x.view(-1, nh, wh, nw, ww, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, wh * ww, c)

    def merge(self, windows: torch.Tensor, kernels=None) -> torch.Tensor:
        """Inverse of :meth:`partition`: (B * num_windows, h * w, C) -> (B, H, W, C)."""
        (h, w), (nh, nw), (wh, ww), c = self.hw, self.counts, self.window, windows.shape[-1]
        x = windows.view(-1, nh, nw, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(-1, nh * wh, nw * ww, c)
        if any(self.shift):
            x = torch.roll(x, shifts=self.shift, dims=(1, 2))
        return x[:, :h, :w].contiguous()
