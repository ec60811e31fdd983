"""Autograd functions that keep fewer activations for backward and recompute the rest.

Training memory of a Swin block is dominated by what autograd saves, not by weights.
Stock PyTorch keeps, per block, the attention probabilities and scaled copies of q and
k (CPU ``scaled_dot_product_attention`` falls back to its math path whenever the bias
needs a gradient), and both the MLP's hidden state and its GELU. The functions here
keep only qkv, the softmax row log-sum-exp and the MLP's hidden state; probabilities
and GELU are recomputed in backward, which costs one small batched matmul and one
elementwise pass per block; at Swin-T 2x512x512 autograd keeps 0.74x of mmdet's bytes.

Set ``ENABLED = False`` to run the stock PyTorch ops instead (debugging, comparisons).
"""
import torch
import torch.nn.functional as F

ENABLED = True

# Backward (and the MLP forward) work through chunks of rows or windows whose
# intermediates fit in a reused scratch buffer of about this many bytes, instead of
# fresh full-size tensors: that spares the page faults of a new multi-megabyte buffer
# per op, which on many machines cost more than the math. Swin-T 2x512x512 training
# step on 2 CPU cores: 1 MiB 2050 ms, 4 MiB 1798, 8-32 MiB 1710-1734, 64 MiB 1769;
# peak memory 787 MiB at 8 MiB, 795 at 16 (mmdet 1075).
SCRATCH_BYTES = 1 << 23


def needs_grad(*tensors) -> bool:
    """Whether autograd will record an op on these tensors (None entries ignored)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _apply_as_autocast_would(function, *args):
    """Run `function` (a custom autograd function's ``apply``, or out= kernels that
    autocast does not handle) as autocast would: cast its floating-point tensors to the
    autocast dtype first, then run it with autocast off so every op inside agrees."""
    device = next(a for a in args if isinstance(a, torch.Tensor)).device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        args = tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point()
                     else a for a in args)
    with torch.autocast(device, enabled=False):
        return function(*args)


def _chunk_length(count: int, bytes_per_item: int, whole: bool = False) -> int:
    """Items per chunk so that a chunk's scratch holds about SCRATCH_BYTES; all of them
    at once under torch.compile (which fuses by itself) or when `whole`."""
    step = count if whole or torch.compiler.is_compiling() else SCRATCH_BYTES // bytes_per_item
    return max(1, min(step, count))


class _WindowAttention(torch.autograd.Function):
    """softmax(q k^T * scale + attn_mask) v with qkv = linear(windows), windows grouped
    by image.

    windows: (B * nW, N, C); attn_mask: (G, heads, N, N) with G = nW (one mask per
    window of an image) or 1 (shared by every window). Returns (B * nW, N, C).
    Forward runs the flash kernel and saves windows, qkv and the row log-sum-exp.
    Backward recomputes the probabilities window chunk by window chunk in reused
    scratch and folds the qkv linear's backward into the same chunks, so neither the
    probabilities nor the (B * nW, N, 3C) qkv gradient is ever allocated in full.
    """

    @staticmethod
    def forward(ctx, windows, weight, bias, attn_mask, num_heads: int, scale: float):
        qkv = F.linear(windows, weight, bias)
        out, lses = _attend_per_image(qkv, attn_mask, num_heads,
                                      lambda q, k, v: _flash(q, k, v, attn_mask, scale))
        lse = lses[0] if len(lses) == 1 else torch.cat(lses)
        ctx.save_for_backward(windows, weight, qkv, attn_mask, lse)
        ctx.num_heads, ctx.scale = num_heads, scale
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
        step, chunks = _window_chunks(bw, group, bytes_per_window)
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
                _add_product(grad_weight, grad_qkv.t(),
                             windows[start:stop].reshape(m * n, channels), index == 0)
            if grad_bias is not None:
                grad_bias.add_(grad_qkv.sum(0))
            if grad_windows is not None:
                torch.mm(grad_qkv, weight, out=grad_windows[start:stop].view(m * n, channels))
        return grad_windows, grad_weight, grad_bias, grad_mask, None, None


def _add_product(total, a, b, first: bool) -> None:
    """total (+)= a @ b over chunks: the first chunk writes, so a weight gradient needs
    no zero-filled buffer (a whole extra pass over fresh memory)."""
    if first:
        torch.mm(a, b, out=total)
    else:
        total.addmm_(a, b)


def _window_chunks(num_windows: int, group: int, bytes_per_window: int):
    """(rows, [(start, stop, first window index within the mask)]) covering all windows.

    Chunks hold about SCRATCH_BYTES and never straddle two images, so a chunk's slice
    of a per-window mask is contiguous.
    """
    span = max(1, num_windows if group == 1 else group)
    step = _chunk_length(span, bytes_per_window)
    chunks = [(image + start, image + min(start + step, span), start)
              for image in range(0, num_windows, span) for start in range(0, span, step)]
    return step, chunks


def _flash(q, k, v, attn_mask, scale):
    """PyTorch's CPU flash-attention kernel: (output, row log-sum-exp)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q, k, v, 0.0, False, attn_mask=attn_mask, scale=scale)


def _attend_per_image(qkv, attn_mask, num_heads, attend):
    """Split qkv (B * nW, N, 3C) into heads and run ``attend(q, k, v) -> (out, *extras)``
    one image at a time (all windows at once when the mask is shared), so a per-window
    mask is never copied batch times. Returns ((B * nW, N, C), [extras...])."""
    bw, n, c3 = qkv.shape
    step = bw if attn_mask.shape[0] == 1 else attn_mask.shape[0]
    heads_split = qkv.view(bw, n, 3, num_heads, c3 // 3 // num_heads)
    q, k, v = heads_split.permute(2, 0, 3, 1, 4).unbind(0)
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


def window_attention(windows: torch.Tensor, qkv: torch.nn.Linear, attn_mask: torch.Tensor,
                     num_heads: int, scale: float, dropout_p: float = 0.) -> torch.Tensor:
    """Window attention on windows (B * nW, N, C) through the `qkv` linear, with an
    additive (G, heads, N, N) mask.

    CPU without attention dropout: the flash kernel, through the lean autograd function
    when a gradient is needed. Everything else (CUDA, whose fused SDPA kernels already
    handle the mask gradient, and dropout) goes through ``scaled_dot_product_attention``.
    """
    lean = ENABLED and windows.device.type == 'cpu' and dropout_p == 0
    if lean and needs_grad(windows, attn_mask, qkv.weight, qkv.bias):
        return _apply_as_autocast_would(_WindowAttention.apply, windows, qkv.weight, qkv.bias,
                                        attn_mask.to(windows.dtype), num_heads, scale)
    qkv_rows = qkv(windows)
    attn_mask = attn_mask.to(qkv_rows.dtype)
    if lean:
        return _attend_per_image(qkv_rows, attn_mask, num_heads,
                                 lambda q, k, v: _flash(q, k, v, attn_mask, scale))[0]
    return _attend_per_image(qkv_rows, attn_mask, num_heads, lambda q, k, v: (
        F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p,
                                       scale=scale),))[0]


def _row_chunks(rows: int, width: int, like: torch.Tensor):
    """Row chunks of an (M, 4C) hidden layer shaped `rows` x `width` with the dtype and
    device of `like`; one chunk on GPUs (launches are the cost there) and under
    torch.compile (which fuses by itself)."""
    step = _chunk_length(rows, width * like.element_size(), whole=like.device.type != 'cpu')
    return step, [(start, min(start + step, rows)) for start in range(0, rows, step)]


def _linear_into(x, weight, bias, out):
    """F.linear of 2-D rows written into `out`."""
    if bias is None:
        return torch.mm(x, weight.t(), out=out)
    return torch.addmm(bias, x, weight.t(), out=out)


def _gelu_mlp_inference(x, weight1, bias1, weight2, bias2):
    """fc2(gelu(fc1(x))) without autograd, row chunk by row chunk in one reused scratch:
    neither the (M, 4C) hidden layer nor its GELU is allocated in full."""
    rows = x.reshape(-1, x.shape[-1])
    result = x.new_empty(*x.shape[:-1], weight2.shape[0])
    out = result.view(-1, weight2.shape[0])
    step, chunks = _row_chunks(rows.shape[0], weight1.shape[0], x)
    scratch = x.new_empty(step, weight1.shape[0])
    for start, stop in chunks:
        hidden = _linear_into(rows[start:stop], weight1, bias1, scratch[:stop - start])
        _linear_into(torch._C._nn.gelu(hidden, out=hidden), weight2, bias2, out[start:stop])
    return result


class _GeluMlp(torch.autograd.Function):
    """fc2(gelu(fc1(x))) on x of shape (..., C), keeping x and fc1's output for backward.

    Takes and returns the caller's shape: a view of a custom function's output turns
    the block's in-place residual add into a CopySlices, whose backward clones and
    zero-fills the whole map.
    """

    @staticmethod
    def forward(ctx, x, weight1, bias1, weight2, bias2):
        result = x.new_empty(*x.shape[:-1], weight2.shape[0])
        out = result.view(-1, weight2.shape[0])
        hidden = F.linear(x.reshape(-1, x.shape[-1]), weight1, bias1)
        step, chunks = _row_chunks(*hidden.shape, hidden)
        scratch = hidden.new_empty(step, hidden.shape[1])
        for start, stop in chunks:
            activated = torch._C._nn.gelu(hidden[start:stop], out=scratch[:stop - start])
            _linear_into(activated, weight2, bias2, out[start:stop])
        ctx.save_for_backward(x, weight1, weight2, hidden)
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
        step, chunks = _row_chunks(*hidden.shape, hidden)
        scratch = hidden.new_empty(step, hidden.shape[1])
        for start, stop in chunks:
            buffer, rows_grad = scratch[:stop - start], grad_out[start:stop]
            if grad_w2 is not None:
                _add_product(grad_w2, rows_grad.t(),
                             torch._C._nn.gelu(hidden[start:stop], out=buffer), start == 0)
            torch.mm(rows_grad, weight2, out=buffer)
            torch.ops.aten.gelu_backward.grad_input(buffer, hidden[start:stop],
                                                    grad_input=buffer)
            if grad_w1 is not None:
                _add_product(grad_w1, buffer.t(), x[start:stop], start == 0)
            if grad_b1 is not None:
                grad_b1.add_(buffer.sum(0))
            if grad_x is not None:
                torch.mm(buffer, weight1, out=grad_x_rows[start:stop])
        return grad_x, grad_w1, grad_b1, grad_w2, grad_out.sum(0) if needs[4] else None


def gelu_mlp(x: torch.Tensor, fc1: torch.nn.Linear, fc2: torch.nn.Linear) -> torch.Tensor:
    """fc2(gelu(fc1(x))) for x of shape (..., C). Without autograd it runs in row
    chunks; with autograd, the GELU is recomputed in backward."""
    args = (x, fc1.weight, fc1.bias, fc2.weight, fc2.bias)
    if not ENABLED:
        return fc2(F.gelu(fc1(x)))
    return _apply_as_autocast_would(_GeluMlp.apply if needs_grad(*args) else _gelu_mlp_inference,
                                    *args)
