"""FLOPs of a step (torch's own counter) and the machine's float32 matmul peak."""
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(step: Callable[[], object]) -> int:
    """Floating-point operations of matmuls, convolutions and attention in one step."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Best float32 GFLOP/s of a square matmul: the ceiling a dense model can reach here."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9
