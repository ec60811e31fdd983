"""Autograd functions that keep fewer activations for backward and recompute the rest.

Training memory of a Swin block is dominated by what autograd saves, not by weights.
Stock PyTorch keeps, per block, the attention probabilities and scaled copies of q and
k (CPU ``scaled_dot_product_attention`` falls back to its math path whenever the bias
needs a gradient), and both the MLP's hidden state and its GELU. The functions here
keep only qkv, the softmax row log-sum-exp and the MLP's hidden state; probabilities
and GELU are recomputed in backward, which costs one small batched matmul and one
elementwise pass per block; at Swin-T 2x512x512 autograd keeps 0.74x of mmdet's bytes.
Without autograd, the MLP runs oneDNN's fused linear+GELU on CPU.

Set ``ENABLED = False`` to run the stock PyTorch ops instead (debugging, comparisons).
"""
from typing import Optional

import torch
import torch.nn.functional as F

ENABLED = True


def _autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


class _WindowAttention(torch.autograd.Function):
    """softmax(q k^T * scale + attn_mask) v for windows grouped by image.

    qkv: (B * nW, N, 3C) straight from the qkv linear; attn_mask: (G, heads, N, N) with
    G = nW (one mask per window of an image) or 1 (shared by every window).
    Returns (B * nW, N, C). Backward reuses its buffers where it can: on many machines
    a fresh multi-megabyte buffer (page faults) costs more than the math written to it.
    """

    @staticmethod
    def forward(ctx, qkv, attn_mask, num_heads: int, scale: float):
        bw, n, c3 = qkv.shape
        step = bw if attn_mask.shape[0] == 1 else attn_mask.shape[0]
        q, k, v = qkv.view(bw, n, 3, num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        out, lses = None, []
        for i in range(0, bw, step):  # per image: the mask is never copied batch times
            window_out, window_lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                q[i:i + step], k[i:i + step], v[i:i + step], 0.0, False,
                attn_mask=attn_mask, scale=scale)
            window_out = window_out.transpose(1, 2)                   # (step, N, heads, d)
            if step == bw:
                out = window_out
            else:
                out = window_out.new_empty(bw, *window_out.shape[1:]) if out is None else out
                out[i:i + step].copy_(window_out)
            lses.append(window_lse)
        ctx.save_for_backward(qkv, attn_mask, torch.cat(lses))
        ctx.num_heads, ctx.scale = num_heads, scale
        return out.reshape(bw, n, c3 // 3)  # a view: the kernel writes tokens-major

    @staticmethod
    def backward(ctx, grad_out):
        qkv, attn_mask, lse = ctx.saved_tensors
        bw, n, c3 = qkv.shape
        group, heads, scale = attn_mask.shape[0], ctx.num_heads, ctx.scale
        images, d = bw // group, c3 // 3 // heads
        tokens_first = (images, group, n, 3, heads, d)
        # One heads-first copy of q, k, v (3, B, G, heads, N, d) so that every batched
        # matmul reads contiguous rows; its storage later receives the qkv gradient.
        heads_first = qkv.view(tokens_first).permute(3, 0, 1, 4, 2, 5).contiguous()
        q, k, v = (t.view(-1, n, d) for t in heads_first.unbind(0))
        q.mul_(scale)
        grad_out = grad_out.view(images, group, n, heads, d).transpose(2, 3).reshape(-1, n, d)
        probs = torch.bmm(q, k.transpose(1, 2))
        probs.view(images, group, heads, n, n).add_(attn_mask).sub_(
            lse.view(images, group, heads, n, 1)).exp_()
        grads = torch.empty_like(heads_first)
        grad_q, grad_k, grad_v = (t.view(-1, n, d) for t in grads.unbind(0))
        torch.bmm(probs.transpose(1, 2), grad_out, out=grad_v)
        grad_logits = torch.bmm(grad_out, v.transpose(1, 2))
        torch.ops.aten._softmax_backward_data.out(grad_logits, probs, -1, probs.dtype,
                                                  grad_input=grad_logits)
        grad_mask = None
        if ctx.needs_input_grad[1]:
            grad_mask = grad_logits.view(images, group, heads, n, n).sum(0)
        torch.bmm(grad_logits.transpose(1, 2), q, out=grad_k)  # q is already scaled
        torch.bmm(grad_logits, k, out=grad_q).mul_(scale)
        grad_qkv = heads_first.view(tokens_first)  # q, k, v are no longer needed
        grad_qkv.copy_(grads.permute(1, 2, 4, 0, 3, 5))
        return grad_qkv.view(bw, n, c3), grad_mask, None, None


def window_attention(qkv: torch.Tensor, attn_mask: torch.Tensor, num_heads: int,
                     scale: float, dropout_p: float = 0.) -> torch.Tensor:
    """Window attention on qkv (B * nW, N, 3C) with an additive (G, heads, N, N) mask.

    The lean function serves CPU tensors without attention dropout; everything else
    (CUDA, whose fused SDPA kernels already handle the mask gradient, and dropout)
    goes through ``scaled_dot_product_attention`` one image at a time, so a per-window
    mask is never copied batch times.
    """
    bw, n, c3 = qkv.shape
    attn_mask = attn_mask.to(qkv.dtype)
    if ENABLED and qkv.device.type == 'cpu' and dropout_p == 0:
        return _WindowAttention.apply(qkv, attn_mask, num_heads, scale)
    q, k, v = qkv.view(bw, n, 3, num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    step = bw if attn_mask.shape[0] == 1 else attn_mask.shape[0]
    outs = [F.scaled_dot_product_attention(q[i:i + step], k[i:i + step], v[i:i + step],
                                           attn_mask=attn_mask, dropout_p=dropout_p,
                                           scale=scale)
            for i in range(0, bw, step)]
    out = outs[0] if len(outs) == 1 else torch.cat(outs)
    return out.transpose(1, 2).reshape(bw, n, c3 // 3)


class _GeluMlp(torch.autograd.Function):
    """fc2(gelu(fc1(x))) on (M, C) rows, keeping x and fc1's output for backward."""

    @staticmethod
    def forward(ctx, x, weight1, bias1, weight2, bias2):
        hidden = F.linear(x, weight1, bias1)
        ctx.save_for_backward(x, weight1, weight2, hidden)
        return F.linear(F.gelu(hidden), weight2, bias2)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight1, weight2, hidden = ctx.saved_tensors
        needs = ctx.needs_input_grad
        # One (M, 4C) buffer holds gelu(hidden), then its gradient, then the hidden's:
        # a fresh buffer of that size costs more than the GELU itself on many machines.
        buffer = F.gelu(hidden)
        grad_w2 = grad_out.t().mm(buffer) if needs[3] else None
        torch.mm(grad_out, weight2, out=buffer)
        grad_hidden = torch.ops.aten.gelu_backward.grad_input(buffer, hidden, grad_input=buffer)
        return (grad_hidden.mm(weight1) if needs[0] else None,
                grad_hidden.t().mm(x) if needs[1] else None,
                grad_hidden.sum(0) if needs[2] else None,
                grad_w2,
                grad_out.sum(0) if needs[4] else None)


def _onednn_fusable(x: torch.Tensor, params) -> bool:
    """oneDNN's fused linear+GELU applies: CPU float32 inference outside torch.compile
    (which fuses by itself). It saves the (M, 4C) GELU pass and buffer (3x faster MLP
    at stage 1) with bit-identical results to linear-then-GELU."""
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad
                                                                    for p in params))
    return (ENABLED and not needs_grad and x.device.type == 'cpu'
            and x.dtype == torch.float32 and all(p.dtype == torch.float32 for p in params)
            and torch.backends.mkldnn.is_available() and not torch.compiler.is_compiling())


def gelu_mlp(x: torch.Tensor, fc1: torch.nn.Linear, fc2: torch.nn.Linear) -> torch.Tensor:
    """fc2(gelu(fc1(x))) for x of shape (..., C); recomputes the GELU in backward."""
    params = (fc1.weight, fc1.bias, fc2.weight, fc2.bias)
    rows = x.reshape(-1, x.shape[-1])
    cast = _autocast_dtype(x.device.type)
    if cast is None and _onednn_fusable(x, params):
        hidden = torch.ops.mkldnn._linear_pointwise(rows, fc1.weight, fc1.bias, 'gelu', [],
                                                    'none')
        out = F.linear(hidden, fc2.weight, fc2.bias)
    else:
        if cast is not None:  # cast as autocast would, then run the function without it
            rows, params = rows.to(cast), tuple(p.to(cast) for p in params)
        with torch.autocast(x.device.type, enabled=False):
            out = _GeluMlp.apply(rows, *params)
    return out.view(*x.shape[:-1], out.shape[-1])
