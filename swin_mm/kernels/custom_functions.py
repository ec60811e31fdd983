"""What the lean kernels' custom autograd functions (writing into reused buffers) share:
when autograd records, how autocast would have cast, and how big a chunk of work is."""
from typing import Optional

import torch

from ..compat import autocast_dtype

# Backward (and the MLP forward) work through chunks of rows or windows whose
# intermediates fit in a reused scratch buffer of about this many bytes, instead of
# fresh full-size tensors: that spares the page faults of a new multi-megabyte buffer
# per op, which on many machines cost more than the math. Swin-T 2x512x512 training
# step on 2 CPU cores: 1 MiB 2050 ms, 4 MiB 1798, 8-32 MiB 1710-1734, 64 MiB 1769;
# peak memory 787 MiB at 8 MiB, 795 at 16 (mmdet 1075).
DEFAULT_SCRATCH_BYTES = 1 << 23


def needs_grad(*tensors) -> bool:
    """Whether autograd will record an op on these tensors (None entries ignored)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a matmul on `x` runs in here: autocast's, where it is on."""
    return autocast_dtype(x.device.type) or x.dtype


def apply_as_autocast_would(function, *args):
    """Run `function` (a custom autograd function's ``apply``, or out= kernels that
    autocast does not handle) as autocast would: cast its floating-point tensors to the
    autocast dtype first, then run it with autocast off so every op inside agrees."""
    device = next(a for a in args if isinstance(a, torch.Tensor)).device.type
    dtype = autocast_dtype(device)
    if dtype is not None:
        args = tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point()
                     else a for a in args)
    with torch.autocast(device, enabled=False):
        return function(*args)


def chunk_length(count: int, bytes_per_item: int, scratch_bytes: Optional[int],
                 whole: bool = False) -> int:
    """Items per chunk so that a chunk's scratch holds about `scratch_bytes`; all of
    them at once when `whole` or `scratch_bytes` is None (what :mod:`.selection` gives
    under torch.compile, which fuses by itself)."""
    step = count if whole or scratch_bytes is None else scratch_bytes // bytes_per_item
    return max(1, min(step, count))


def add_product(total, a, b, first: bool) -> None:
    """total (+)= a @ b over chunks: the first chunk writes, so a weight gradient needs
    no zero-filled buffer (a whole extra pass over fresh memory)."""
    if first:
        torch.mm(a, b, out=total)
    else:
        total.addmm_(a, b)
