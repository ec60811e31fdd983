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
- :func:`lean_window_attention`: CPU only, float dtypes the probe found the kernel to
  handle, no dropout (:mod:`.selection` decides); PyTorch's CPU flash kernel forward and
  a custom backward that keeps only qkv and the row log-sum-exp (:class:`_WindowAttention`).

:func:`reference_attention` and :func:`sdpa_attention` are the same cores on
(batch, heads, N, d) q, k, v, used by the global attention layer.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from ..compat import scaled_dot_product_attention
from .custom_functions import add_product, apply_as_autocast_would, chunk_length, needs_grad


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


def _flash(q, k, v, attn_mask, scale):
    """PyTorch's CPU flash-attention kernel (torch 2.3+): (output, row log-sum-exp)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q, k, v, 0.0, False, attn_mask=attn_mask, scale=scale)


def lean_window_attention(windows, qkv, attn_mask, num_heads: int, scale: float, *,
                          scratch_bytes: Optional[int]) -> torch.Tensor:
    """CPU window attention through the flash kernel; through :class:`_WindowAttention`
    when a gradient is needed, whose backward works in chunks of about `scratch_bytes`
    (None: all windows at once)."""
    attn_mask = attn_mask.contiguous()  # a no-op for the model's mask; see the module doc
    if needs_grad(windows, attn_mask, qkv.weight, qkv.bias):
        return apply_as_autocast_would(_WindowAttention.apply, windows, qkv.weight, qkv.bias,
                                       attn_mask.to(windows.dtype), num_heads, scale,
                                       scratch_bytes)
    qkv_rows = qkv(windows)
    attn_mask = attn_mask.to(qkv_rows.dtype)
    return _attend_per_image(qkv_rows, attn_mask, num_heads,
                             lambda q, k, v: _flash(q, k, v, attn_mask, scale))[0]


class _WindowAttention(torch.autograd.Function):
    """Window attention with qkv = linear(windows, weight, bias); shapes as in the
    module doc, plus `scratch_bytes` (the chunk budget of backward).

    Forward runs the flash kernel and saves windows, qkv and the row log-sum-exp.
    Backward recomputes the probabilities window chunk by window chunk in reused
    scratch and folds the qkv linear's backward into the same chunks, so neither the
    probabilities nor the (B * nW, N, 3C) qkv gradient is ever allocated in full.
    """

    @staticmethod
    def forward(ctx, windows, weight, bias, attn_mask, num_heads: int, scale: float,
                scratch_bytes: int):
        qkv = F.linear(windows, weight, bias)
        out, lses = _attend_per_image(qkv, attn_mask, num_heads,
                                      lambda q, k, v: _flash(q, k, v, attn_mask, scale))
        lse = lses[0] if len(lses) == 1 else torch.cat(lses)
        ctx.save_for_backward(windows, weight, qkv, attn_mask, lse)
        ctx.num_heads, ctx.scale, ctx.scratch_bytes = num_heads, scale, scratch_bytes
        return out

    @staticmethod
    def backward(ctx, grad_out):
        windows, weight, qkv, attn_mask, lse = ctx.saved_tensors
        needs = ctx.needs_input_grad
        bw, n, c3 = qkv.shape
        group, heads, scale = attn_mask.shape[0], ctx.num_heads, ctx.scale
        dims, channels = c3 // 3 // heads, windows.shape[-1]
        qkv = qkv.view(bw, n, 3, heads, dims)
        grad_out = grad_out.reshape(bw, n, heads, dims)
        grad_windows = torch.empty_like(windows) if needs[0] else None
        grad_weight = torch.empty_like(weight) if needs[1] else None
        grad_bias = qkv.new_zeros(c3) if needs[2] else None
        grad_mask = torch.zeros_like(attn_mask) if needs[3] else None
        bytes_per_window = heads * n * (10 * dims + 2 * n) * qkv.element_size()
        step, chunks = _window_chunks(bw, group, bytes_per_window, ctx.scratch_bytes)
        # Scratch reused by every chunk: heads-first q, k, v (so that each batched matmul
        # reads contiguous rows) and their gradients, the output gradient, probabilities
        # and their gradient, and the qkv gradient back in token order for the linear.
        qkv_scratch, grads_scratch = (qkv.new_empty(3, step, heads, n, dims) for _ in range(2))
        grad_out_scratch = qkv.new_empty(step, heads, n, dims)
        probs_scratch, grad_probs_scratch = (qkv.new_empty(step, heads, n, n) for _ in range(2))
        grad_qkv_scratch = qkv.new_empty(step, n, 3, heads, dims)
        for index, (start, stop, first_window) in enumerate(chunks):
            m = stop - start
            q, k, v = qkv_scratch[:, :m].copy_(qkv[start:stop].permute(2, 0, 3, 1, 4)).unbind(0)
            grad_q, grad_k, grad_v = grads_scratch[:, :m].unbind(0)
            rows = grad_out_scratch[:m].copy_(grad_out[start:stop].transpose(1, 2))
            probs, grad_probs = probs_scratch[:m], grad_probs_scratch[:m]
            mask = attn_mask if group == 1 else attn_mask[first_window:first_window + m]
            q.mul_(scale)
            torch.matmul(q, k.transpose(-1, -2), out=probs)
            probs.add_(mask).sub_(lse[start:stop].unsqueeze(-1)).exp_()
            torch.matmul(probs.transpose(-1, -2), rows, out=grad_v)
            torch.matmul(rows, v.transpose(-1, -2), out=grad_probs)
            torch.ops.aten._softmax_backward_data.out(grad_probs, probs, -1, probs.dtype,
                                                      grad_input=grad_probs)
            if grad_mask is not None:
                if group == 1:
                    grad_mask[0].add_(grad_probs.sum(0))
                else:
                    grad_mask[first_window:first_window + m].add_(grad_probs)
            torch.matmul(grad_probs.transpose(-1, -2), q, out=grad_k)  # q is already scaled
            torch.matmul(grad_probs, k, out=grad_q).mul_(scale)
            grad_qkv = grad_qkv_scratch[:m].copy_(grads_scratch[:, :m].permute(1, 3, 0, 2, 4))
            grad_qkv = grad_qkv.view(m * n, c3)
            if grad_weight is not None:
                add_product(grad_weight, grad_qkv.t(),
                            windows[start:stop].reshape(m * n, channels), index == 0)
            if grad_bias is not None:
                grad_bias.add_(grad_qkv.sum(0))
            if grad_windows is not None:
                torch.mm(grad_qkv, weight, out=grad_windows[start:stop].view(m * n, channels))
        return grad_windows, grad_weight, grad_bias, grad_mask, None, None, None


def _window_chunks(num_windows: int, group: int, bytes_per_window: int, scratch_bytes: int):
    """(rows, [(start, stop, first window index within the mask)]) covering all windows.

    Chunks hold about `scratch_bytes` and never straddle two images, so a chunk's slice
    of a per-window mask is contiguous.
    """
    span = max(1, num_windows if group == 1 else group)
    step = chunk_length(span, bytes_per_window, scratch_bytes)
    chunks = [(image + start, image + min(start + step, span), start)
              for image in range(0, num_windows, span) for start in range(0, span, step)]
    return step, chunks
