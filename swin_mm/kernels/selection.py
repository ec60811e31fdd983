"""Which implementation of each op runs, chosen once per (device type, mode).

``select_kernels(device_type, mode)`` returns a :class:`Kernels`: ``'reference'`` gives
the plain public-op implementations everywhere; ``'auto'`` gives the fastest ones the
running torch was found to provide (:mod:`.probes`), and the reference for any op it
lacks.

CUDA and other accelerators get public ops only (SDPA attention, reference MLP and
partition) until the lean kernels' CUDA tests have passed on a GPU.
"""
import functools
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from .attention import (
    lean_window_attention, reference_attention, reference_window_attention, sdpa_attention,
    sdpa_window_attention
)
from .lean_support import DEFAULT_SCRATCH_BYTES
from .mlp import lean_gelu_mlp, reference_gelu_mlp
from .partition import lean_merge, lean_partition, reference_merge, reference_partition
from .probes import RUNNING_TORCH, Capabilities

KERNEL_MODES = ('auto', 'reference')


@dataclass(frozen=True)
class Kernels:
    """One implementation per op; shapes and signatures in each op's module."""
    window_attention: Callable  # attention.reference_window_attention
    attention: Callable         # attention.reference_attention (global attention)
    gelu_mlp: Callable          # mlp.reference_gelu_mlp
    partition: Callable         # partition.reference_partition
    merge: Callable             # partition.reference_merge

    def names(self) -> Dict[str, str]:
        """{op: implementation function name}, for logs and reports."""
        return {op: getattr(fn, 'func', fn).__name__ for op, fn in vars(self).items()}


REFERENCE_KERNELS = Kernels(reference_window_attention, reference_attention,
                            reference_gelu_mlp, reference_partition, reference_merge)


def check_kernel_mode(mode) -> None:
    """Raise a one-line ValueError unless `mode` is one of KERNEL_MODES."""
    if mode not in KERNEL_MODES:
        raise ValueError(f'kernels must be one of {KERNEL_MODES}, got {mode!r}')


def build_kernels(device_type: str, mode: str, scratch_bytes: int,
                  capabilities: Capabilities) -> Kernels:
    """The kernels for `device_type` given what the running torch can do."""
    check_kernel_mode(mode)
    if mode == 'reference':
        return REFERENCE_KERNELS
    if device_type != 'cpu':
        return Kernels(sdpa_window_attention, sdpa_attention, reference_gelu_mlp,
                       reference_partition, reference_merge)
    attention = reference_window_attention
    if capabilities.cpu_flash_dtypes and capabilities.softmax_backward_out:
        attention = functools.partial(lean_window_attention, scratch_bytes=scratch_bytes,
                                      flash_dtypes=capabilities.cpu_flash_dtypes)
    mlp = reference_gelu_mlp
    if capabilities.gelu_out_kernels:
        mlp = functools.partial(lean_gelu_mlp, scratch_bytes=scratch_bytes)
    return Kernels(attention, sdpa_attention, mlp, lean_partition, lean_merge)


# A plain dict rather than functools.lru_cache: torch.compile traces through the cache
# wrapper anyway, and warns about it, where it reads a dict entry as a constant.
_SELECTED: Dict[Tuple[str, str, int], Kernels] = {}


def select_kernels(device_type: str, mode: str = 'auto',
                   scratch_bytes: int = DEFAULT_SCRATCH_BYTES) -> Kernels:
    """The kernels for tensors on `device_type` ('cpu', 'cuda', ...) in `mode`
    ('auto' or 'reference'); `scratch_bytes` is the CPU kernels' chunk budget.
    Built once per combination."""
    key = (device_type, mode, scratch_bytes)
    if key not in _SELECTED:
        _SELECTED[key] = build_kernels(device_type, mode, scratch_bytes, RUNNING_TORCH)
    return _SELECTED[key]
