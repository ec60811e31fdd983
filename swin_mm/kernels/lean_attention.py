"""CPU window attention with PyTorch's flash kernel forward and a memory-lean backward,
for both Swin forms of the logits (same arguments and results as their references):

- :func:`lean_window_attention`: Swin V1, ``q k^T * scale`` with a float ``scale``
  (:func:`.attention.reference_window_attention`);
- :func:`lean_cosine_window_attention`: Swin V2, ``q̂ k̂^T * s`` with q and k normalised
  per head and a per-head scale tensor ``s`` of shape (heads, 1, 1)
  (:func:`.cosine_attention.reference_cosine_window_attention`).

CPU only, float dtypes the probe found the flash kernel to handle, no dropout
(:mod:`.selection` decides). With a gradient they run :class:`_WindowAttention`, whose
forward keeps only the windows, qkv and the row log-sum-exp, and whose backward
recomputes the probabilities chunk by chunk in reused scratch: neither the probabilities
nor the full qkv gradient is ever allocated. The attention mask's gradient (V1's
position-bias table, V2's continuous position bias) is exact.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from .attention import _attend_per_image
from .custom_functions import add_product, apply_as_autocast_would, chunk_length, needs_grad

_NORMALIZE_EPS = 1e-12  # F.normalize's default: a norm below it divides by it instead


def _flash(q, k, v, attn_mask, scale):
    """PyTorch's CPU flash-attention kernel (torch 2.3+): (output, row log-sum-exp)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q, k, v, 0.0, False, attn_mask=attn_mask, scale=scale)


class _DotProduct:
    """V1 logits ``(q * scale) k^T``; `scale` is a float."""

    @staticmethod
    def attend(q, k, v, attn_mask, scale):
        return _flash(q, k, v, attn_mask, scale)

    @staticmethod
    def prepare(q, k, norms, scale) -> None:
        """In place: raw q, k -> the q, k of the logits' plain product."""
        q.mul_(scale)

    @staticmethod
    def finish(grad_q, grad_k, q, k, norms, scale, grad_scale) -> None:
        """In place: gradients of the prepared q, k -> gradients of the raw q, k."""
        grad_q.mul_(scale)


def _unit_in_place(x, norms) -> None:
    torch.linalg.vector_norm(x, dim=-1, keepdim=True, out=norms)
    x.div_(norms.clamp(min=_NORMALIZE_EPS))


def _unit_backward(grad, unit, norms, dot) -> None:
    """grad of x/max(|x|, eps) -> grad of x, in place: (grad - unit <unit, grad>) / |x|
    (no projection where the norm was clamped: there x/eps is linear)."""
    dot.mul_(norms >= _NORMALIZE_EPS)
    grad.addcmul_(unit, dot, value=-1).div_(norms.clamp(min=_NORMALIZE_EPS))


class _Cosine:
    """V2 logits ``(unit(q) * s) unit(k)^T``; `scale` is the (heads, 1, 1) tensor ``s``."""

    @staticmethod
    def attend(q, k, v, attn_mask, scale):
        return _flash(F.normalize(q, dim=-1, eps=_NORMALIZE_EPS) * scale,
                      F.normalize(k, dim=-1, eps=_NORMALIZE_EPS), v, attn_mask, 1.0)

    @staticmethod
    def prepare(q, k, norms, scale) -> None:
        _unit_in_place(q, norms[0])
        _unit_in_place(k, norms[1])
        q.mul_(scale)

    @staticmethod
    def finish(grad_q, grad_k, q, k, norms, scale, grad_scale) -> None:
        # q holds s * unit(q); the gradient of unit(q) is s * grad_q, and
        # <unit(q), s * grad_q> = <q, grad_q>, which also gives s's gradient.
        dot = (grad_q * q).sum(-1, keepdim=True)
        if grad_scale is not None:
            grad_scale.add_(dot.sum((0, 2, 3)).view_as(grad_scale) / scale)
        grad_q.mul_(scale)
        _unit_backward(grad_q, q / scale, norms[0], dot)
        _unit_backward(grad_k, k, norms[1], (grad_k * k).sum(-1, keepdim=True))


def lean_window_attention(windows, qkv, attn_mask, num_heads: int, scale: float, *,
                          scratch_bytes: Optional[int]) -> torch.Tensor:
    """Swin V1 window attention on the CPU (module doc); the backward works in chunks of
    about `scratch_bytes` (None: all windows at once)."""
    return _lean(_DotProduct, windows, qkv.weight, qkv.bias, scale, attn_mask, num_heads,
                 scratch_bytes)


def lean_cosine_window_attention(windows, weight, bias, scale, attn_mask, num_heads: int,
                                 *, scratch_bytes: Optional[int]) -> torch.Tensor:
    """Swin V2 cosine window attention on the CPU (module doc); arguments as
    :func:`.cosine_attention.reference_cosine_window_attention` without dropout."""
    return _lean(_Cosine, windows, weight, bias, scale, attn_mask, num_heads, scratch_bytes)


def _lean(form, windows, weight, bias, scale, attn_mask, num_heads, scratch_bytes):
    attn_mask = attn_mask.contiguous()  # see .attention's module doc: a no-op for ours
    scale_tensor = scale if isinstance(scale, torch.Tensor) else None
    if needs_grad(windows, attn_mask, weight, bias, scale_tensor):
        return apply_as_autocast_would(_WindowAttention.apply, windows, weight, bias,
                                       attn_mask.to(windows.dtype), num_heads, scale,
                                       scratch_bytes, form)
    qkv_rows = F.linear(windows, weight, bias)
    attn_mask = attn_mask.to(qkv_rows.dtype)
    if scale_tensor is not None:
        scale = scale.to(qkv_rows.dtype)
    return _attend_per_image(qkv_rows, attn_mask, num_heads,
                             lambda q, k, v: form.attend(q, k, v, attn_mask, scale))[0]


class _WindowAttention(torch.autograd.Function):
    """Window attention with qkv = linear(windows, weight, bias) and the logits of
    `form` (:class:`_DotProduct` or :class:`_Cosine`); shapes as in
    :mod:`.attention`, `scale` a float or a (heads, 1, 1) tensor, `scratch_bytes` the
    chunk budget of backward.

    Forward runs the flash kernel and saves windows, qkv and the row log-sum-exp.
    Backward recomputes the probabilities window chunk by window chunk in reused
    scratch and folds the form's and the qkv linear's backward into the same chunks.
    """

    @staticmethod
    def forward(ctx, windows, weight, bias, attn_mask, num_heads: int, scale,
                scratch_bytes: int, form=_DotProduct):
        qkv = F.linear(windows, weight, bias)
        out, lses = _attend_per_image(qkv, attn_mask, num_heads,
                                      lambda q, k, v: form.attend(q, k, v, attn_mask, scale))
        lse = lses[0] if len(lses) == 1 else torch.cat(lses)
        scale_tensor = scale if isinstance(scale, torch.Tensor) else None
        ctx.save_for_backward(windows, weight, qkv, attn_mask, lse, scale_tensor)
        ctx.num_heads, ctx.scratch_bytes = num_heads, scratch_bytes
        ctx.scale = None if scale_tensor is not None else scale
        ctx.form = form
        return out

    @staticmethod
    def backward(ctx, grad_out):
        windows, weight, qkv, attn_mask, lse, scale_tensor = ctx.saved_tensors
        scale = ctx.scale if scale_tensor is None else scale_tensor
        needs = ctx.needs_input_grad
        bw, n, c3 = qkv.shape
        group, heads = attn_mask.shape[0], ctx.num_heads
        dims, channels = c3 // 3 // heads, windows.shape[-1]
        qkv = qkv.view(bw, n, 3, heads, dims)
        grad_out = grad_out.reshape(bw, n, heads, dims)
        grad_windows = torch.empty_like(windows) if needs[0] else None
        grad_weight = torch.empty_like(weight) if needs[1] else None
        grad_bias = qkv.new_zeros(c3) if needs[2] else None
        grad_mask = torch.zeros_like(attn_mask) if needs[3] else None
        grad_scale = torch.zeros_like(scale_tensor) if needs[5] else None
        bytes_per_window = heads * n * (10 * dims + 2 * n + 2) * qkv.element_size()
        step, chunks = _window_chunks(bw, group, bytes_per_window, ctx.scratch_bytes)
        # Scratch reused by every chunk: heads-first q, k, v (so that each batched matmul
        # reads contiguous rows) and their gradients, the output gradient, probabilities
        # and their gradient, the norms of q and k (cosine form), and the qkv gradient
        # back in token order for the linear.
        qkv_scratch, grads_scratch = (qkv.new_empty(3, step, heads, n, dims) for _ in range(2))
        grad_out_scratch = qkv.new_empty(step, heads, n, dims)
        probs_scratch, grad_probs_scratch = (qkv.new_empty(step, heads, n, n) for _ in range(2))
        norms_scratch = qkv.new_empty(2, step, heads, n, 1)
        grad_qkv_scratch = qkv.new_empty(step, n, 3, heads, dims)
        for index, (start, stop, first_window) in enumerate(chunks):
            m = stop - start
            q, k, v = qkv_scratch[:, :m].copy_(qkv[start:stop].permute(2, 0, 3, 1, 4)).unbind(0)
            grad_q, grad_k, grad_v = grads_scratch[:, :m].unbind(0)
            rows = grad_out_scratch[:m].copy_(grad_out[start:stop].transpose(1, 2))
            probs, grad_probs = probs_scratch[:m], grad_probs_scratch[:m]
            norms = norms_scratch[:, :m]
            mask = attn_mask if group == 1 else attn_mask[first_window:first_window + m]
            ctx.form.prepare(q, k, norms, scale)
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
            torch.matmul(grad_probs.transpose(-1, -2), q, out=grad_k)
            torch.matmul(grad_probs, k, out=grad_q)
            ctx.form.finish(grad_q, grad_k, q, k, norms, scale, grad_scale)
            grad_qkv = grad_qkv_scratch[:m].copy_(grads_scratch[:, :m].permute(1, 3, 0, 2, 4))
            grad_qkv = grad_qkv.view(m * n, c3)
            if grad_weight is not None:
                add_product(grad_weight, grad_qkv.t(),
                            windows[start:stop].reshape(m * n, channels), index == 0)
            if grad_bias is not None:
                grad_bias.add_(grad_qkv.sum(0))
            if grad_windows is not None:
                torch.mm(grad_qkv, weight, out=grad_windows[start:stop].view(m * n, channels))
        return grad_windows, grad_weight, grad_bias, grad_mask, None, grad_scale, None, None


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
