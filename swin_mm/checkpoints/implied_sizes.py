"""What the shapes of the position tables say: the one place that derives a window size
from a relative position bias table, and a grid from an absolute position embedding.

Checkpoints do not store the window or the pretraining size; conversion, fitting and
architecture inference all read them back from these shapes.
"""
import math

import torch

from .errors import CheckpointError


def square_side(count: int, what: str) -> int:
    """s with s * s == count, or a CheckpointError naming `what`."""
    side = math.isqrt(count)
    if side * side != count:
        raise CheckpointError(f'expected a square {what}, found {count} entries')
    return side


def window_of_bias_table(table: torch.Tensor, key: str) -> int:
    """Window side w of a ((2w-1)^2, heads) relative position bias table: every published
    Swin v1 checkpoint has square windows."""
    side = square_side(table.shape[0], f'{key} ((2w-1)^2 rows for a window w)')
    if side % 2 == 0:
        raise CheckpointError(f'{key}: expected (2w-1)^2 rows for a square window w, '
                              f'found {table.shape[0]}')
    return (side + 1) // 2


def grid_of_abs_embed(embed: torch.Tensor) -> int:
    """Side of the square patch grid of a (1, L, C) absolute position embedding."""
    return square_side(embed.shape[1], 'absolute_pos_embed grid (L positions)')
