"""Swin V2 window attention: scaled cosine similarity, softmax(q̂ k̂^T * s + attn_mask) v.

q̂ and k̂ are q and k normalised to unit length per head; ``s`` is the per-head logit
scale (already clamped and exponentiated by the caller, shape (heads, 1, 1)), folded
into q̂ so that one attention call with scale 1 does the rest. Shapes, shared by the
implementations (same arguments, same result):

    windows    (B * nW, N, C)
    weight     (3C, C) qkv weight; bias (3C,) or None (V2: q bias, zeros, v bias)
    scale      (heads, 1, 1) logit scale
    attn_mask  (G, heads, N, N) additive (position bias plus shift mask); G = nW or 1
    returns    (B * nW, N, C), before the output projection

- :func:`reference_cosine_window_attention`: the definition in public ops, the official
  code's math (explicit normalise, matmul, scale, + bias + mask, softmax, @ v);
- :func:`sdpa_cosine_window_attention`: the same through one
  ``F.scaled_dot_product_attention`` call per image (fused kernels where the device
  and torch have them);
- :func:`.lean_attention.lean_cosine_window_attention`: the CPU flash kernel forward and
  a lean backward.

:mod:`.selection` decides which one runs.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from .attention import _attend_per_image, _split_heads, reference_attention, sdpa_attention


def _scaled_unit(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """q normalised to unit length along the head dimension, times the per-head scale."""
    return F.normalize(q, dim=-1) * scale.to(q.dtype)


def reference_cosine_window_attention(windows, weight, bias: Optional[torch.Tensor], scale,
                                      attn_mask, num_heads: int,
                                      dropout_p: float = 0.) -> torch.Tensor:
    """Cosine window attention in public ops; the per-window mask broadcasts over images."""
    bw, n, _ = windows.shape
    group = attn_mask.shape[0]
    q, k, v = _split_heads(F.linear(windows, weight, bias), num_heads)
    q, k, v = (t.reshape(bw // group, group, *t.shape[1:])
               for t in (_scaled_unit(q, scale), F.normalize(k, dim=-1), v))
    out = reference_attention(q, k, v, attn_mask, 1.0, dropout_p)  # (B, G, heads, N, d)
    return out.reshape(bw, num_heads, n, -1).transpose(1, 2).reshape(bw, n, -1)


def sdpa_cosine_window_attention(windows, weight, bias: Optional[torch.Tensor], scale,
                                 attn_mask, num_heads: int, dropout_p: float = 0., *,
                                 takes_scale: bool) -> torch.Tensor:
    """Cosine window attention through F.scaled_dot_product_attention, image by image;
    `takes_scale`: whether the running torch's SDPA has ``scale``."""
    qkv_rows = F.linear(windows, weight, bias)
    attn_mask = attn_mask.to(qkv_rows.dtype)
    return _attend_per_image(qkv_rows, attn_mask, num_heads, lambda q, k, v: (
        sdpa_attention(_scaled_unit(q, scale), F.normalize(k, dim=-1), v, attn_mask, 1.0,
                       dropout_p, takes_scale=takes_scale),))[0]
