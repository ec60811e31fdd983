"""The shift mask: which token pairs of a shifted window come from different regions.

A cyclic shift wraps the bottom and right bands of the padded map around into the
windows of the top and left; tokens of different bands must not attend to each other.
The labelling (three bands per axis, 3x3 regions) is the official code's.
"""
from typing import Tuple

import torch

# Logit between tokens from different regions of a shifted window. The reference
# implementations use -100, whose probability exp(-100) ~ 4e-44 is a subnormal float:
# the same result to float64 precision, but x86 CPUs run exp and matmuls on subnormals
# 30-60x slower. -inf gives exact zeros; no row is all -inf (a token shares its region).
MASKED_LOGIT = float('-inf')


def window_count(size, window: int):
    """ceil(size / window), in the one form torch.export and ONNX keep symbolic: the
    padded size is then ``count * window``, so views agree with the pad exactly."""
    return (size + window - 1) // window


def region(position: torch.Tensor, length, window: int, shift: int) -> torch.Tensor:
    """Which of the three bands a cyclic shift creates along one axis (0, 1, 2) each
    position of a `length`-long padded axis lies in (`length` may be a traced size)."""
    return (position >= length - window).long() + (position >= length - shift).long()


def to_windows(grid: torch.Tensor, window: Tuple[int, int],
               shift: Tuple[int, int]) -> torch.Tensor:
    """(Hp, Wp) grid -> (num_windows, h * w): shift cyclically, then cut into windows."""
    (hp, wp), (wh, ww) = grid.shape, window
    grid = torch.roll(grid, shifts=(-shift[0], -shift[1]), dims=(0, 1))
    return grid.view(hp // wh, wh, wp // ww, ww).transpose(1, 2).reshape(-1, wh * ww)


def mask_between(label: torch.Tensor) -> torch.Tensor:
    """(num_windows, N) region labels -> (num_windows, N, N) additive mask."""
    differs = label[:, :, None] != label[:, None, :]
    return torch.zeros(differs.shape, device=label.device).masked_fill_(differs, MASKED_LOGIT)


def shift_window_mask(padded_hw: Tuple[int, int], window: Tuple[int, int],
                      shift: Tuple[int, int]) -> torch.Tensor:
    """(num_windows, N, N) additive mask: MASKED_LOGIT between tokens of different regions,
    computed on the padded map as the references do."""
    (hp, wp), (wh, ww), (sh, sw) = padded_hw, window, shift
    label = (region(torch.arange(hp), hp, wh, sh)[:, None] * 3
             + region(torch.arange(wp), wp, ww, sw)[None, :])
    return mask_between(to_windows(label, window, (0, 0)))  # labels are already shifted
