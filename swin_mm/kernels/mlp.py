"""The block's MLP fc2(gelu(fc1(x))) with exact (erf) GELU.

Shapes: x (..., C); fc1 nn.Linear C -> H; fc2 nn.Linear H -> C; returns (..., C).

- :func:`reference_mlp`: the block's MLP modules as they are (any activation, dropout).
- :func:`lean_gelu_mlp`: exact GELU and no dropout only (:mod:`.selection` decides);
  without autograd, row chunks through one reused scratch with
  GELU in place (the (M, H) hidden layer is never allocated in full); with autograd,
  :class:`_GeluMlp` keeps x and fc1's output and recomputes GELU in backward. Uses the
  out= forms of GELU and its backward (``torch._C._nn.gelu``, ``aten.gelu_backward``).
"""
from typing import Optional

import torch
import torch.nn.functional as F

from .custom_functions import add_product, apply_as_autocast_would, chunk_length, needs_grad


def reference_mlp(x, layers) -> torch.Tensor:
    """The MLP `layers` (mmcv's FFN layout: ``[[fc1, activation, dropout], fc2,
    dropout]``) applied as modules: fc2(gelu(fc1(x))) for the Swin block in eval."""
    return layers(x)


def lean_gelu_mlp(x, fc1, fc2, *, scratch_bytes: Optional[int]) -> torch.Tensor:
    """fc2(gelu(fc1(x))) in chunks of about `scratch_bytes` of hidden rows (None: one
    chunk)."""
    args = (x, fc1.weight, fc1.bias, fc2.weight, fc2.bias)
    if needs_grad(*args):
        return apply_as_autocast_would(_GeluMlp.apply, *args, scratch_bytes)
    return apply_as_autocast_would(_gelu_mlp_inference, *args, scratch_bytes)


def _row_chunks(rows: int, width: int, like: torch.Tensor, scratch_bytes: int):
    """Row chunks of an (M, H) hidden layer shaped `rows` x `width` with the dtype and
    device of `like`; one chunk on GPUs (launches are the cost there) and under
    torch.compile (which fuses by itself)."""
    step = chunk_length(rows, width * like.element_size(), scratch_bytes,
                        whole=like.device.type != 'cpu')
    return step, [(start, min(start + step, rows)) for start in range(0, rows, step)]


def _linear_into(x, weight, bias, out):
    """F.linear of 2-D rows written into `out`."""
    if bias is None:
        return torch.mm(x, weight.t(), out=out)
    return torch.addmm(bias, x, weight.t(), out=out)


def _gelu_mlp_inference(x, weight1, bias1, weight2, bias2, scratch_bytes: int):
    """fc2(gelu(fc1(x))) without autograd, row chunk by row chunk in one reused scratch:
    neither the (M, H) hidden layer nor its GELU is allocated in full."""
    rows = x.reshape(-1, x.shape[-1])
    result = x.new_empty(*x.shape[:-1], weight2.shape[0])
    out = result.view(-1, weight2.shape[0])
    step, chunks = _row_chunks(rows.shape[0], weight1.shape[0], x, scratch_bytes)
    scratch = x.new_empty(step, weight1.shape[0])
    for start, stop in chunks:
        hidden = _linear_into(rows[start:stop], weight1, bias1, scratch[:stop - start])
        _linear_into(torch._C._nn.gelu(hidden, out=hidden), weight2, bias2, out[start:stop])
    return result


class _GeluMlp(torch.autograd.Function):
    """fc2(gelu(fc1(x))) on x of shape (..., C), keeping x and fc1's output for backward;
    the last argument is the chunk budget in bytes.

    Takes and returns the caller's shape: a view of a custom function's output turns
    the block's in-place residual add into a CopySlices, whose backward clones and
    zero-fills the whole map.
    """

    @staticmethod
    def forward(ctx, x, weight1, bias1, weight2, bias2, scratch_bytes: int):
        result = x.new_empty(*x.shape[:-1], weight2.shape[0])
        out = result.view(-1, weight2.shape[0])
        hidden = F.linear(x.reshape(-1, x.shape[-1]), weight1, bias1)
        step, chunks = _row_chunks(*hidden.shape, hidden, scratch_bytes)
        scratch = hidden.new_empty(step, hidden.shape[1])
        for start, stop in chunks:
            activated = torch._C._nn.gelu(hidden[start:stop], out=scratch[:stop - start])
            _linear_into(activated, weight2, bias2, out[start:stop])
        ctx.save_for_backward(x, weight1, weight2, hidden)
        ctx.scratch_bytes = scratch_bytes
        return result

    @staticmethod
    def backward(ctx, grad_out):
        inputs, weight1, weight2, hidden = ctx.saved_tensors
        needs = ctx.needs_input_grad
        x, grad_out = inputs.reshape(-1, inputs.shape[-1]), grad_out.reshape(hidden.shape[0], -1)
        grad_x = inputs.new_empty(inputs.shape) if needs[0] else None
        grad_x_rows = None if grad_x is None else grad_x.view(x.shape)
        grad_w1 = torch.empty_like(weight1) if needs[1] else None
        grad_b1 = hidden.new_zeros(hidden.shape[1]) if needs[2] else None
        grad_w2 = torch.empty_like(weight2) if needs[3] else None
        step, chunks = _row_chunks(*hidden.shape, hidden, ctx.scratch_bytes)
        scratch = hidden.new_empty(step, hidden.shape[1])
        for start, stop in chunks:
            buffer, rows_grad = scratch[:stop - start], grad_out[start:stop]
            if grad_w2 is not None:
                add_product(grad_w2, rows_grad.t(),
                            torch._C._nn.gelu(hidden[start:stop], out=buffer), start == 0)
            torch.mm(rows_grad, weight2, out=buffer)
            torch.ops.aten.gelu_backward.grad_input(buffer, hidden[start:stop],
                                                    grad_input=buffer)
            if grad_w1 is not None:
                add_product(grad_w1, buffer.t(), x[start:stop], start == 0)
            if grad_b1 is not None:
                grad_b1.add_(buffer.sum(0))
            if grad_x is not None:
                torch.mm(buffer, weight1, out=grad_x_rows[start:stop])
        grad_b2 = grad_out.sum(0) if needs[4] else None
        return grad_x, grad_w1, grad_b1, grad_w2, grad_b2, None
