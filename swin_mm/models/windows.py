"""Window geometry of one Swin stage: padding, cyclic shift, partition and shift mask.

Everything here depends only on the feature-map size, the window and the shift, so
:class:`WindowGeometry` is built once per input shape and stage and then shared by
every block of the stage (the peers rebuild the mask in every block on every forward).

Pad, cyclic shift and partition are one permutation of token positions, so they are
done as one ``index_select`` with a cached index (the peers copy the map three times:
``F.pad``, ``torch.roll`` and the partition permute, and three more times to undo them).

Those indices are computed from Python ints, so a traced or exported graph would bake
them in and be wrong at any other size. While a graph is being captured
(:func:`capturing_graph`), :class:`ShapeGenericGeometry` computes the same indices
from the traced shape in public ops, so one exported graph serves every input size.
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


def _region(position: torch.Tensor, length, window: int, shift: int) -> torch.Tensor:
    """Which of the three bands a cyclic shift creates along one axis (0, 1, 2) each
    position of a `length`-long padded axis lies in (`length` may be a traced size)."""
    return (position >= length - window).long() + (position >= length - shift).long()


def _region_labels(length: int, window: int, shift: int) -> torch.Tensor:
    return _region(torch.arange(length), length, window, shift)


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
    return _mask_between(_to_windows(label, window, (0, 0)))  # labels are already shifted


def _mask_between(label: torch.Tensor) -> torch.Tensor:
    """(num_windows, N) region labels -> (num_windows, N, N) additive mask."""
    differs = label[:, :, None] != label[:, None, :]
    return torch.zeros(differs.shape, device=label.device).masked_fill_(differs, MASKED_LOGIT)


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
    shape, so the captured graph is right at every size. The same gather/scatter as
    :class:`WindowGeometry`, but its indices are arithmetic on ``arange`` (window slot
    -> shifted padded position -> source token): no pad, roll, crop or permute of a
    map, whose size checks torch.export would turn into guards on the input size.
    Eager runs keep :class:`WindowGeometry`, whose tables are cached. `kernels` are
    accepted for the same interface and unused: these ops are their own reference.
    """

    def __init__(self, hw, window: Tuple[int, int], shift: Tuple[int, int], device):
        (h, w), (wh, ww), (sh, sw) = tuple(hw), tuple(window), tuple(shift)
        self.hw, self.window, self.shift = (h, w), (wh, ww), (sh, sw)
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
            self.mask = _mask_between(_region(row, hp, wh, sh) * 3 + _region(col, wp, ww, sw))

    def partition(self, x: torch.Tensor, kernels=None) -> torch.Tensor:
        """(B, H, W, C) -> (B * num_windows, h * w, C): pad bottom/right, shift, cut."""
        b, c = x.shape[0], x.shape[-1]
        # The padding value as a tensor of x's dtype: a Python 0. becomes a float64
        # constant in the ONNX graphs torch 2.0/2.1 export (a Where onnxruntime refuses).
        windows = torch.where(self.real, x.flatten(1, 2).index_select(1, self.gather),
                              x.new_zeros(()))
        return windows.view(b * self.num_windows, self.window[0] * self.window[1], c)

    def merge(self, windows: torch.Tensor, kernels=None) -> torch.Tensor:
        """Inverse of :meth:`partition`: (B * num_windows, h * w, C) -> (B, H, W, C)."""
        b, c = windows.shape[0] // self.num_windows, windows.shape[-1]
        by_slot = windows.view(b, -1, c)
        return by_slot.index_select(1, self.scatter).view(b, *self.hw, c)
