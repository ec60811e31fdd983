"""What the running torch computes correctly on the CPU, found by calling each private
op the lean kernels use on tiny tensors and comparing with the reference math, and
whether its public SDPA takes ``scale``.

Not by version number: an op that is missing, has another signature or gives other
numbers (as torch 2.3-2.7's flash kernel did with a strided mask) is reported absent,
and its op stays on the reference. Run once, on first use (about 0.1 s), not at import:
``custom_imports=['swin_mm']`` runs no kernel. First use is building a model with
``kernels='auto'`` (:func:`swin_mm.kernels.prepare_kernels`), so that a torch.compile
trace of its forward never meets an unprobed torch (it would try to trace the probe).
"""
import math
from dataclasses import dataclass
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from .lean_attention import _flash

# Largest difference from a float64 reference that a probe accepts, per dtype.
_PROBE_TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5,
                    torch.bfloat16: 5e-2, torch.float16: 5e-3}


@dataclass(frozen=True)
class Capabilities:
    """What the running torch was found to compute correctly on the CPU."""
    cpu_flash_dtypes: Tuple[torch.dtype, ...]  # dtypes of the flash kernel with our mask
    softmax_backward_out: bool                 # aten._softmax_backward_data.out
    gelu_out_kernels: bool                     # _C._nn.gelu(out=), aten.gelu_backward.grad_input
    sdpa_scale: bool                           # F.scaled_dot_product_attention(scale=), 2.1+


def _close(value, expected, dtype) -> bool:
    return bool((value.double() - expected).abs().max() <= _PROBE_TOLERANCE[dtype])


def _cpu_randn(*shape, gen):
    return torch.randn(shape, generator=gen, dtype=torch.float64, device='cpu')


def _probe_flash(dtype) -> bool:
    """The CPU flash kernel with a multi-head, per-window, partly -inf mask laid out as
    the model lays it out: output and log-sum-exp against the reference math."""
    gen = torch.Generator().manual_seed(0)
    q, k, v, mask = (_cpu_randn(2, 3, 6, n, gen=gen).to(dtype) for n in (8, 8, 8, 6))
    mask[:, :, :3, 3:] = float('-inf')
    logits = (q.double() * 0.3) @ k.double().transpose(-2, -1) + mask.double()
    try:
        out, lse = _flash(q, k, v, mask, 0.3)
    except (AttributeError, RuntimeError, TypeError):
        return False
    return (_close(out, logits.softmax(-1) @ v.double(), dtype)
            and _close(lse.reshape(2, 3, 6), logits.logsumexp(-1), dtype))


def _probe_softmax_backward() -> bool:
    gen = torch.Generator().manual_seed(0)
    probs, grad = _cpu_randn(3, 5, gen=gen).softmax(-1), _cpu_randn(3, 5, gen=gen)
    expected = probs * (grad - (grad * probs).sum(-1, keepdim=True))
    probs, grad = probs.float(), grad.float()
    try:
        torch.ops.aten._softmax_backward_data.out(grad, probs, -1, probs.dtype, grad_input=grad)
    except (AttributeError, RuntimeError, TypeError):
        return False
    return _close(grad, expected, torch.float32)


def _probe_gelu() -> bool:
    """GELU and its derivative Phi(x) + x phi(x) through their out= kernels."""
    x = torch.linspace(-4, 4, 17, dtype=torch.float64, device='cpu')
    cdf = 0.5 * (1 + torch.erf(x * 0.5 ** 0.5))
    density = torch.exp(-0.5 * x * x) / (2 * math.pi) ** 0.5
    x32, value, grad = x.float(), torch.empty_like(x.float()), torch.ones_like(x.float())
    try:
        torch._C._nn.gelu(x32, out=value)
        torch.ops.aten.gelu_backward.grad_input(grad, x32, grad_input=grad)
    except (AttributeError, RuntimeError, TypeError):
        return False
    return _close(value, x * cdf, torch.float32) and _close(grad, cdf + x * density,
                                                               torch.float32)


def _probe_sdpa_scale() -> bool:
    q = torch.zeros(1, 1, 1, 1)
    try:
        F.scaled_dot_product_attention(q, q, q, scale=1.0)
    except TypeError:
        return False
    return True


def probe_capabilities() -> Capabilities:
    """Call each private op the lean kernels use, and SDPA, on tiny CPU tensors."""
    with torch.no_grad(), torch.autocast('cpu', enabled=False):
        return Capabilities(tuple(d for d in _PROBE_TOLERANCE if _probe_flash(d)),
                            _probe_softmax_backward(), _probe_gelu(), _probe_sdpa_scale())


_FOUND: Dict[str, Capabilities] = {}


def running_torch() -> Capabilities:
    """The running torch's :class:`Capabilities`, probed on the first call only."""
    if 'running' not in _FOUND:
        _FOUND['running'] = probe_capabilities()
    return _FOUND['running']
