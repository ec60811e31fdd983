"""Relative positions inside a window: which bias-table row each pair of tokens reads.

Derived from the window alone (not learned), so checkpoints and models rebuild it
rather than trusting a file's copy.
"""
import math
from typing import Tuple

import torch


def relative_position_index(window: Tuple[int, int]) -> torch.Tensor:
    """(N, N) index into the ((2h-1)*(2w-1), heads) bias table, N = h*w.

    Entry (i, j) identifies the offset of token j from token i inside a window.
    """
    h, w = window
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    coords = torch.stack((rows.flatten(), cols.flatten()))        # 2, N
    offsets = coords[:, :, None] - coords[:, None, :]              # 2, N, N
    return (offsets[0] + h - 1) * (2 * w - 1) + (offsets[1] + w - 1)


def log_spaced_relative_coords(window: Tuple[int, int],
                               pretrained_window: Tuple[int, int]) -> torch.Tensor:
    """((2h-1) * (2w-1), 2) relative offsets (dh, dw) of a (h, w) window, in the rows of
    :func:`relative_position_index`, log-spaced as Swin V2's continuous position bias
    takes them: each offset divided by (pretrained window - 1) along its axis (by
    (window - 1) where the pretrained window is 0), times 8, then
    ``sign(t) * log2(|t| + 1) / log2(8)``. Float32, as the official code computes it.

    A side of 1 has the single offset 0, left at 0 (the official code divides 0 by 0).
    """
    axes = []
    for size, pretrained in zip(window, pretrained_window):
        span = (pretrained if pretrained > 0 else size) - 1
        axes.append(torch.arange(-(size - 1), size, dtype=torch.float32) / max(span, 1))
    table = torch.stack(torch.meshgrid(*axes, indexing='ij'), dim=-1) * 8
    table = torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)
    return table.reshape(-1, 2)
