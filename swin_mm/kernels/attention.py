"""Window attention softmax(q k^T * scale + attn_mask) v, with q, k, v from one linear.

Shapes, shared by the three implementations (same arguments, same result):
    windows    (B * nW, N, C): the windows of each image next to each other
    qkv        nn.Linear C -> 3C (heads-major channels, as mmdet's WindowMSA)
    attn_mask  (G, heads, N, N), additive; G = nW (one mask per window of an image)
               or 1 (shared by every window). Contiguous: torch 2.3-2.7's CPU flash
               kernel misreads a mask with other strides and returns wrong numbers.
    returns    (B * nW, N, C), before the output projection.

- :func:`reference_window_attention`: the definition in public ops, the math of mmdet,
  the official code and torchvision (explicit q*scale @ k^T + mask, softmax, @ v).
- :func:`sdpa_window_attention`: public ``F.scaled_dot_product_attention``, whose fused
  CUDA kernels handle the mask gradient themselves.
- :func:`.lean_attention.lean_window_attention`: CPU only; PyTorch's CPU flash kernel
  forward and a custom backward that keeps only qkv and the row log-sum-exp.

:func:`reference_attention` and :func:`sdpa_attention` are the same cores on
(batch, heads, N, d) q, k, v, used by the global attention layer.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from ..compat import scaled_dot_product_attention


def reference_attention(q, k, v, attn_mask: Optional[torch.Tensor], scale: Optional[float],
                        dropout_p: float = 0.) -> torch.Tensor:
    """softmax(q*scale @ k^T + attn_mask) @ v on (..., heads, N, d), in public ops;
    ``scale=None`` means 1/sqrt(d). Dropout acts on the probabilities, as in mmdet."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    logits = (q * scale) @ k.transpose(-2, -1)
    if attn_mask is not None:
        logits = logits + attn_mask
    probs = F.dropout(logits.softmax(-1), dropout_p) if dropout_p else logits.softmax(-1)
    return probs @ v


def sdpa_attention(q, k, v, attn_mask: Optional[torch.Tensor], scale: Optional[float],
                   dropout_p: float = 0., *, takes_scale: bool) -> torch.Tensor:
    """:func:`reference_attention` through F.scaled_dot_product_attention; `takes_scale`:
    whether the running torch's SDPA has ``scale`` (``probes.Capabilities.sdpa_scale``)."""
    return scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, scale,
                                        takes_scale=takes_scale)


def _split_heads(qkv_rows: torch.Tensor, num_heads: int):
    """(B * nW, N, 3C) -> q, k, v views of shape (B * nW, heads, N, d)."""
    bw, n, c3 = qkv_rows.shape
    heads_split = qkv_rows.view(bw, n, 3, num_heads, c3 // 3 // num_heads)
    return heads_split.permute(2, 0, 3, 1, 4).unbind(0)


def reference_window_attention(windows, qkv, attn_mask, num_heads: int, scale: float,
                               dropout_p: float = 0.) -> torch.Tensor:
    """Window attention in public ops; the per-window mask broadcasts over images."""
    bw, n, _ = windows.shape
    group = attn_mask.shape[0]
    q, k, v = (t.reshape(bw // group, group, *t.shape[1:])
               for t in _split_heads(qkv(windows), num_heads))
    out = reference_attention(q, k, v, attn_mask, scale, dropout_p)  # (B, G, heads, N, d)
    return out.reshape(bw, num_heads, n, -1).transpose(1, 2).reshape(bw, n, -1)


def _attend_per_image(qkv_rows, attn_mask, num_heads, attend):
    """Split qkv (B * nW, N, 3C) into heads and run ``attend(q, k, v, mask) -> (out,
    *extras)`` one image at a time (all windows at once when the mask is shared), so a
    per-window mask is never copied batch times. Returns ((B * nW, N, C), [extras...])."""
    bw, n, c3 = qkv_rows.shape
    step = bw if attn_mask.shape[0] == 1 else attn_mask.shape[0]
    q, k, v = _split_heads(qkv_rows, num_heads)
    out, extras = None, []
    for i in range(0, bw, step):
        window_out, *extra = attend(q[i:i + step], k[i:i + step], v[i:i + step])
        window_out = window_out.transpose(1, 2)                       # (step, N, heads, d)
        if step == bw:
            out = window_out
        else:
            out = window_out.new_empty(bw, *window_out.shape[1:]) if out is None else out
            out[i:i + step].copy_(window_out)
        extras.extend(extra)
    return out.reshape(bw, n, c3 // 3), extras  # a view when the kernel wrote tokens-major


def sdpa_window_attention(windows, qkv, attn_mask, num_heads: int, scale: float,
                          dropout_p: float = 0., *, takes_scale: bool) -> torch.Tensor:
    """Window attention through F.scaled_dot_product_attention, image by image."""
    qkv_rows = qkv(windows)
    attn_mask = attn_mask.to(qkv_rows.dtype)
    return _attend_per_image(qkv_rows, attn_mask, num_heads, lambda q, k, v: (
        sdpa_attention(q, k, v, attn_mask, scale, dropout_p, takes_scale=takes_scale),))[0]
