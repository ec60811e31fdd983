"""FLOPs of a step (torch's own counter) and the device's matmul peak."""
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from .steps import finish


def count_flops(step: Callable[[], object]) -> int:
    """Floating-point operations of matmuls, convolutions and attention in one step."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def matmul_peak_gflops(device: torch.device = torch.device('cpu'),
                       dtype: torch.dtype = torch.float32, size: int = 2048,
                       repeats: int = 10) -> float:
    """Best GFLOP/s of a square matmul in `dtype`: the ceiling a dense model can reach."""
    if device.type == 'cuda':
        size *= 4  # a 2048 matmul is too short to fill a data-centre GPU
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    out = torch.empty(size, size, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    best = float('inf')
    for _ in range(repeats):
        finish(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        finish(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9
