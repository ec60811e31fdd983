"""What the shapes of the position tables say: the one place that derives a window size
from a relative position bias table (Swin v1) or a relative coordinates table (Swin V2),
and a grid from an absolute position embedding.

Checkpoints do not store the window or the pretraining size; conversion, fitting and
architecture inference all read them back from these shapes (and, for the pretrained
window of a Swin V2 file, from its coordinates table's values).
"""
import math
from typing import Optional, Tuple

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


def window_of_coords_table(table: torch.Tensor, key: str) -> Tuple[int, int]:
    """Window (h, w) of a Swin V2 (1, 2h-1, 2w-1, 2) relative coordinates table."""
    shape = tuple(table.shape)
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 2 or shape[1] % 2 == 0 \
            or shape[2] % 2 == 0:
        raise CheckpointError(f'{key}: expected shape (1, 2h-1, 2w-1, 2) for a window h x w, '
                              f'found {shape}')
    return (shape[1] + 1) // 2, (shape[2] + 1) // 2


def pretrained_window_of_coords_table(table: torch.Tensor, key: str
                                      ) -> Optional[Tuple[int, int]]:
    """The window (h, w) that normalised a Swin V2 coordinates table's values, or None
    where they do not say (a window side of 1, or values of another form).

    Along each axis the table holds ``sign(t) * log2(1 + |t|) / 3`` with ``t = 8 * d /
    (p - 1)`` for offsets ``d = -(w-1) .. w-1``, ``p`` the pretrained window (the
    window itself when none was given): the official code, mmpretrain and torchvision
    compute it so. ``p`` is read from the largest offset and accepted only if the whole
    line then matches within float32 rounding.
    """
    window = window_of_coords_table(table, key)
    lines = (table[0, :, 0, 0], table[0, 0, :, 1])
    pretrained = []
    for side, line in zip(window, lines):
        line = line.double()
        largest = 2 ** (3 * float(line[-1])) - 1  # t at offset w - 1
        if side < 2 or not largest > 0:
            return None
        side_p = round(1 + 8 * (side - 1) / largest)
        if side_p < 2:
            return None
        t = torch.arange(1 - side, side, dtype=torch.float64) * 8 / (side_p - 1)
        expected = torch.sign(t) * torch.log2(t.abs() + 1) / 3
        if not torch.allclose(line, expected, rtol=0, atol=1e-5):
            return None
        pretrained.append(side_p)
    return tuple(pretrained)
