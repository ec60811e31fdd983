"""The kernel layer: every op of the Swin block that has a fast path, with its
reference in plain public torch ops beside it (same arguments, same result).

- :mod:`.attention`: window attention (reference, SDPA)
- :mod:`.cosine_attention`: Swin V2's cosine window attention (reference, SDPA)
- :mod:`.lean_attention`: both on the CPU: flash forward, lean backward
- :mod:`.mlp`: the block's MLP (reference modules, chunked lean GELU MLP)
- :mod:`.partition`: window partition and merge (reference, lean)
- :mod:`.selection`: which one runs, fallbacks included: ``select_kernels``
- :mod:`.probes`: what the running torch provides, probed on first use
- :mod:`.custom_functions`: what the lean custom autograd functions share

The torch-version shims they use are in :mod:`swin_mm.compat`.

Why the lean kernels: training memory of a Swin block is dominated by what autograd
saves, not by weights. Stock PyTorch keeps, per block, the attention probabilities and
scaled copies of q and k (CPU ``scaled_dot_product_attention`` falls back to its math
path whenever the bias needs a gradient), and both the MLP's hidden state and its
GELU. The lean functions keep only qkv, the softmax row log-sum-exp and the MLP's
hidden state; probabilities and GELU are recomputed in backward, which costs one small
batched matmul and one elementwise pass per block; at Swin-T 2x512x512 autograd keeps
0.74x of mmdet's bytes.
"""
from .selection import (
    KERNEL_MODES, REFERENCE_KERNELS, Kernels, check_kernel_mode, prepare_kernels,
    select_kernels
)

__all__ = ['KERNEL_MODES', 'REFERENCE_KERNELS', 'Kernels', 'check_kernel_mode',
           'prepare_kernels', 'select_kernels']
