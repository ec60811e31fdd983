"""Which implementation of each op runs: the one place that decides, fallbacks included.

:func:`select_kernels` returns a :class:`Kernels` for one forward:

- graph capture (export): the plain public-op references, whose ops every exporter
  records (``capturing=True``);
- ``mode='reference'``: the references everywhere;
- devices other than the CPU: public SDPA attention and the references, until the lean
  kernels' CUDA tests have passed on a GPU;
- the CPU: the lean kernels the running torch was found to provide (:mod:`.probes`,
  probed lazily), the reference for any op it lacks; under torch.compile they work in
  one chunk (the compiler fuses by itself).
- Swin V2's cosine window attention: on the CPU the lean kernel like V1's attention,
  elsewhere public SDPA (:mod:`.cosine_attention`, :mod:`.lean_attention`).

Three fallbacks depend on the call and are decided here too, per call:
:func:`cpu_window_attention` takes the reference (:func:`cpu_cosine_window_attention`
public SDPA) under attention dropout or a compute dtype the flash kernel was not found
to handle (autocast included), and :func:`cpu_mlp` takes the MLP's own modules for
another activation than exact GELU or under dropout.
"""
import functools
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..compat import is_compiling
from .attention import (
    reference_attention, reference_window_attention, sdpa_attention, sdpa_window_attention
)
from .cosine_attention import (
    reference_cosine_window_attention, sdpa_cosine_window_attention
)
from .custom_functions import DEFAULT_SCRATCH_BYTES, compute_dtype
from .lean_attention import lean_cosine_window_attention, lean_window_attention
from .mlp import lean_gelu_mlp, reference_mlp
from .partition import lean_merge, lean_partition, reference_merge, reference_partition
from .probes import Capabilities, running_torch

KERNEL_MODES = ('auto', 'reference')


@dataclass(frozen=True)
class Kernels:
    """One implementation per op; shapes in each op's module."""
    window_attention: Callable  # (windows, qkv, attn_mask, num_heads, scale, dropout_p)
    attention: Callable         # (q, k, v, attn_mask, scale, dropout_p): global attention
    mlp: Callable               # (x, layers): the block's MLP
    partition: Callable         # (x, tables): window partition
    merge: Callable             # (windows, tables): its inverse
    # (windows, qkv weight, qkv bias, logit scale, attn_mask, num_heads, dropout_p): Swin V2
    cosine_window_attention: Callable

    def names(self) -> Dict[str, str]:
        """{op: implementation function name}, for logs and reports."""
        return {op: getattr(fn, 'func', fn).__name__ for op, fn in vars(self).items()}


REFERENCE_KERNELS = Kernels(reference_window_attention, reference_attention, reference_mlp,
                            reference_partition, reference_merge,
                            reference_cosine_window_attention)


def check_kernel_mode(mode) -> None:
    """Raise a one-line ValueError unless `mode` is one of KERNEL_MODES."""
    if mode not in KERNEL_MODES:
        raise ValueError(f'kernels must be one of {KERNEL_MODES}, got {mode!r}')


def prepare_kernels(mode) -> None:
    """Check `mode`; for ``'auto'``, probe the running torch now (once per process), at
    model construction, rather than inside a forward that torch.compile may be tracing."""
    check_kernel_mode(mode)
    if mode == 'auto':
        running_torch()


def cpu_window_attention(windows, qkv, attn_mask, num_heads: int, scale: float,
                         dropout_p: float = 0., *, scratch_bytes: Optional[int],
                         flash_dtypes: Sequence[torch.dtype]) -> torch.Tensor:
    """The lean attention, or the reference under attention dropout or for a compute
    dtype the running torch's flash kernel was not found to handle (`flash_dtypes`)."""
    if dropout_p or compute_dtype(windows) not in flash_dtypes:
        return reference_window_attention(windows, qkv, attn_mask, num_heads, scale, dropout_p)
    return lean_window_attention(windows, qkv, attn_mask, num_heads, scale,
                                 scratch_bytes=scratch_bytes)


def cpu_cosine_window_attention(windows, weight, bias, scale, attn_mask, num_heads: int,
                                dropout_p: float = 0., *, scratch_bytes: Optional[int],
                                flash_dtypes: Sequence[torch.dtype],
                                takes_scale: bool) -> torch.Tensor:
    """The lean cosine attention, or public SDPA under attention dropout or for a
    compute dtype the running torch's flash kernel was not found to handle."""
    if dropout_p or compute_dtype(windows) not in flash_dtypes:
        return sdpa_cosine_window_attention(windows, weight, bias, scale, attn_mask,
                                            num_heads, dropout_p, takes_scale=takes_scale)
    return lean_cosine_window_attention(windows, weight, bias, scale, attn_mask, num_heads,
                                        scratch_bytes=scratch_bytes)


def cpu_mlp(x, layers, *, scratch_bytes: Optional[int]) -> torch.Tensor:
    """The lean GELU MLP for exact GELU without active dropout; else the modules."""
    (fc1, act, drop_hidden), fc2, drop_out = layers[0], layers[1], layers[2]
    dropping = layers.training and (drop_hidden.p > 0 or drop_out.p > 0)
    if isinstance(act, nn.GELU) and act.approximate == 'none' and not dropping:
        return lean_gelu_mlp(x, fc1, fc2, scratch_bytes=scratch_bytes)
    return reference_mlp(x, layers)


def build_kernels(device_type: str, mode: str, scratch_bytes: Optional[int],
                  capabilities: Capabilities) -> Kernels:
    """The kernels for `device_type` given what the running torch can do;
    `scratch_bytes` None: the CPU kernels work in one chunk."""
    check_kernel_mode(mode)
    if mode == 'reference':
        return REFERENCE_KERNELS
    sdpa = functools.partial(sdpa_attention, takes_scale=capabilities.sdpa_scale)
    # Swin V2's cosine attention: public SDPA off the CPU (its logit scale and the
    # normalisation are elementwise; SDPA picks the fused kernel the device has).
    cosine = functools.partial(sdpa_cosine_window_attention,
                               takes_scale=capabilities.sdpa_scale)
    if device_type != 'cpu':
        return Kernels(functools.partial(sdpa_window_attention,
                                         takes_scale=capabilities.sdpa_scale),
                       sdpa, reference_mlp, reference_partition, reference_merge, cosine)
    attention = reference_window_attention
    if capabilities.cpu_flash_dtypes and capabilities.softmax_backward_out:
        attention = functools.partial(cpu_window_attention, scratch_bytes=scratch_bytes,
                                      flash_dtypes=capabilities.cpu_flash_dtypes)
        cosine = functools.partial(cpu_cosine_window_attention, scratch_bytes=scratch_bytes,
                                   flash_dtypes=capabilities.cpu_flash_dtypes,
                                   takes_scale=capabilities.sdpa_scale)
    mlp = reference_mlp
    if capabilities.gelu_out_kernels:
        mlp = functools.partial(cpu_mlp, scratch_bytes=scratch_bytes)
    return Kernels(attention, sdpa, mlp, lean_partition, lean_merge, cosine)


# A plain dict rather than functools.lru_cache: torch.compile traces through the cache
# wrapper anyway, and warns about it, where it reads a dict entry as a constant.
_SELECTED: Dict[Tuple[str, str, int, bool], Kernels] = {}


def select_kernels(device_type: str, mode: str = 'auto',
                   scratch_bytes: int = DEFAULT_SCRATCH_BYTES, *,
                   capturing: bool = False) -> Kernels:
    """The kernels for tensors on `device_type` ('cpu', 'cuda', ...) in `mode`
    ('auto' or 'reference'); `scratch_bytes` is the CPU kernels' chunk budget;
    `capturing`: a graph capture for export is recording (see
    :func:`swin_mm.compat.capturing_graph`). Built once per combination."""
    if capturing:
        return REFERENCE_KERNELS
    compiling = is_compiling()
    key = (device_type, mode, scratch_bytes, compiling)
    if key not in _SELECTED:
        _SELECTED[key] = build_kernels(device_type, mode, None if compiling else scratch_bytes,
                                       running_torch())
    return _SELECTED[key]
