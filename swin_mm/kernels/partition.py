"""Window partition and merge by cached token indices (see
:class:`swin_mm.geometry.WindowTables`).

Pad, cyclic shift and cut into windows are one permutation of token positions, so
partition is one gather and merge (which also crops the padding) is its inverse.
Shapes, shared by both implementations:
    x        (B, H, W, C) channels-last map
    windows  (B * nW, N, C), N = tables.window_tokens
    tables   ``gather`` (nW * N,) long: the map token read by each window slot;
             ``scatter`` (H * W,) long: the window slot of each map token;
             ``padding_slots`` (P,) long: the slots that hold padding (zeroed), or None;
             ``hw`` (H, W)

- :func:`reference_partition` / :func:`reference_merge`: plain ``index_select`` and
  ``index_fill`` with autograd's own backward (a zero-filled scatter-add).
- :func:`lean_partition` / :func:`lean_merge`: write straight into their output and,
  since each is the other's gradient (every real token has exactly one slot), run
  backward as one gather too (:class:`_Partition`, :class:`_Merge`).
"""
import torch

from .custom_functions import needs_grad


def reference_partition(x, tables) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, N, C) in public autograd ops."""
    windows = x.flatten(1, -2).index_select(1, tables.gather)
    if tables.padding_slots is not None:
        windows = windows.index_fill(1, tables.padding_slots, 0.)
    return windows.reshape(-1, tables.window_tokens, x.shape[-1])


def reference_merge(windows, tables) -> torch.Tensor:
    """(B * nW, N, C) -> (B, H, W, C) in public autograd ops."""
    c = windows.shape[-1]
    by_slot = windows.reshape(-1, tables.gather.numel(), c)
    return by_slot.index_select(1, tables.scatter).view(by_slot.shape[0], *tables.hw, c)


def lean_partition(x, tables) -> torch.Tensor:
    """:func:`reference_partition` into a preallocated output, with a gather backward."""
    arguments = (x, tables.gather, tables.scatter, tables.padding_slots, tables.window_tokens)
    if needs_grad(x):
        return _Partition.apply(*arguments)
    return _gather_windows(x, tables.gather, tables.padding_slots, tables.window_tokens)


def lean_merge(windows, tables) -> torch.Tensor:
    """:func:`reference_merge` into a preallocated output, with a gather backward."""
    if needs_grad(windows):
        return _Merge.apply(windows, tables.gather, tables.scatter, tables.padding_slots,
                            tables.hw)
    return _scatter_tokens(windows, tables.scatter, tables.gather.numel(), tables.hw)


def _gather_windows(x, gather, padding_slots, window_tokens):
    """Allocated in its final shape: a custom Function must not return a view."""
    b, c, slots = x.shape[0], x.shape[-1], gather.numel()
    windows = x.new_empty(b * slots // window_tokens, window_tokens, c)
    by_slot = windows.view(b, slots, c)
    torch.index_select(x.flatten(1, -2), 1, gather, out=by_slot)
    if padding_slots is not None:
        by_slot.index_fill_(1, padding_slots, 0.)
    return windows


def _scatter_tokens(windows, scatter, slots, hw):
    c = windows.shape[-1]
    b = windows.shape[0] * windows.shape[1] // slots
    x = windows.new_empty(b, *hw, c)
    torch.index_select(windows.view(b, slots, c), 1, scatter, out=x.view(b, hw[0] * hw[1], c))
    return x


class _Partition(torch.autograd.Function):
    """Forward gathers with `gather`; backward gathers back with `scatter`."""

    @staticmethod
    def forward(ctx, x, gather, scatter, padding_slots, window_tokens):
        ctx.save_for_backward(scatter)
        ctx.hw, ctx.slots = tuple(x.shape[1:3]), gather.numel()
        return _gather_windows(x, gather, padding_slots, window_tokens)

    @staticmethod
    def backward(ctx, grad_windows):
        scatter, = ctx.saved_tensors  # patch merging's channel reorder gives strided grads
        return (_scatter_tokens(grad_windows.contiguous(), scatter, ctx.slots, ctx.hw),
                None, None, None, None)


class _Merge(torch.autograd.Function):
    """Forward gathers with `scatter`; backward gathers back with `gather`."""

    @staticmethod
    def forward(ctx, windows, gather, scatter, padding_slots, hw):
        ctx.save_for_backward(gather, padding_slots)
        ctx.window_tokens = windows.shape[1]
        return _scatter_tokens(windows, scatter, gather.numel(), hw)

    @staticmethod
    def backward(ctx, grad_x):
        gather, padding_slots = ctx.saved_tensors
        return (_gather_windows(grad_x, gather, padding_slots, ctx.window_tokens),
                None, None, None, None)
