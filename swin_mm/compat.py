"""Every torch API whose spelling changed between torch 2.0 and today, in one place.

Each name is resolved from what the running torch has (not from its version string),
by looking at signatures and attributes only: importing this module runs no kernel.
The one shim that must call an op to find out (``F.scaled_dot_product_attention``'s
``scale``) takes the answer as an argument; :mod:`swin_mm.kernels.probes` finds it.
"""
import inspect
import math
from typing import Optional

import torch
import torch.nn.functional as F


def _resolve_is_compiling():
    """torch.compiler.is_compiling (2.3+), torch._dynamo.is_compiling before it."""
    compiler = getattr(torch, 'compiler', None)
    if hasattr(compiler, 'is_compiling'):
        return compiler.is_compiling
    try:
        from torch._dynamo import is_compiling
    except ImportError:
        return lambda: False
    return is_compiling


is_compiling = _resolve_is_compiling()


def _resolve_is_exporting():
    """torch.compiler.is_exporting (torch 2.5+); before it, torch.export runs through
    dynamo with symbolic shapes, which the SymInt test of capturing_graph sees."""
    compiler = getattr(torch, 'compiler', None)
    return getattr(compiler, 'is_exporting', lambda: False)


is_exporting = _resolve_is_exporting()


def capturing_graph(x: torch.Tensor) -> bool:
    """Whether `x` flows through a graph capture that must stay valid at other sizes:
    torch.onnx export, torch.jit tracing, torch.export (all its modes), or symbolic
    shapes in any tracer. Plain torch.compile is not one: it recompiles per size.
    Public APIs only, each where the running torch has it; costs a few microseconds."""
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or is_exporting()
            or isinstance(x.shape[-1], torch.SymInt))


# torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype came together (2.4).
_AUTOCAST_TAKES_DEVICE = hasattr(torch, 'get_autocast_dtype')


def autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The dtype autocast casts to on `device_type`, or None where autocast is off."""
    if _AUTOCAST_TAKES_DEVICE:
        enabled = torch.is_autocast_enabled(device_type)
        return torch.get_autocast_dtype(device_type) if enabled else None
    if device_type == 'cpu':
        enabled, dtype = torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype
    elif device_type == 'cuda':
        enabled, dtype = torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype
    else:  # before 2.4 autocast had no public getter for other devices
        return None
    return dtype() if enabled else None


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p: float = 0.,
                                 scale: Optional[float] = None, *,
                                 takes_scale: bool) -> torch.Tensor:
    """F.scaled_dot_product_attention with ``scale`` on every torch: where the argument
    is missing (2.0; `takes_scale` False, see ``probes.sdpa_takes_scale``), the scale is
    folded into q, against SDPA's default 1/sqrt(d)."""
    if scale is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    if takes_scale:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                              dropout_p=dropout_p, scale=scale)
    q = q * (scale * math.sqrt(q.shape[-1]))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)


# torch.load(mmap=) exists from torch 2.1.
LOAD_TAKES_MMAP = 'mmap' in inspect.signature(torch.load).parameters


def onnx_export_takes_dynamo() -> bool:
    """torch.onnx.export(dynamo=) exists from torch 2.5; its default flips in 2.9."""
    return 'dynamo' in inspect.signature(torch.onnx.export).parameters
