"""Relative positions inside a window: which bias-table row each pair of tokens reads.

Derived from the window alone (not learned), so checkpoints and models rebuild it
rather than trusting a file's copy.
"""
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
