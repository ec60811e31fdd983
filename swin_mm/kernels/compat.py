"""The few torch APIs whose spelling changed between torch 2.0 and today, in one place.

Each name is resolved once, at import, from what the running torch has (not from its
version string), so callers and torch.compile see one plain function.
"""
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


def _sdpa_takes_scale() -> bool:
    """F.scaled_dot_product_attention(scale=) exists from torch 2.1 on."""
    q = torch.zeros(1, 1, 1, 1)
    try:
        F.scaled_dot_product_attention(q, q, q, scale=1.0)
    except TypeError:
        return False
    return True


SDPA_TAKES_SCALE = _sdpa_takes_scale()


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p: float = 0.,
                                 scale: Optional[float] = None,
                                 takes_scale: bool = SDPA_TAKES_SCALE) -> torch.Tensor:
    """F.scaled_dot_product_attention with ``scale`` on every torch: where the argument
    is missing (2.0), the scale is folded into q, against SDPA's default 1/sqrt(d)."""
    if scale is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    if takes_scale:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                              dropout_p=dropout_p, scale=scale)
    q = q * (scale * math.sqrt(q.shape[-1]))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
