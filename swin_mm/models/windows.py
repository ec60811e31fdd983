"""Window geometry of one Swin stage: padding, cyclic shift, partition and shift mask.

Everything here depends only on the feature-map size, the window and the shift, so
:class:`WindowGeometry` is built once per input shape and stage and then shared by
every block of the stage (the peers rebuild the mask in every block on every forward).
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

# The value the reference implementations put on attention logits between tokens
# that come from different regions of a shifted window.
MASKED_LOGIT = -100.0


def relative_position_index(window: Tuple[int, int]) -> torch.Tensor:
    """(N, N) index into the ((2h-1)*(2w-1), heads) bias table, N = h*w.

    Entry (i, j) identifies the offset of token j from token i inside a window.
    """
    h, w = window
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    coords = torch.stack((rows.flatten(), cols.flatten()))        # 2, N
    offsets = coords[:, :, None] - coords[:, None, :]              # 2, N, N
    return (offsets[0] + h - 1) * (2 * w - 1) + (offsets[1] + w - 1)


def _region_labels(length: int, window: int, shift: int) -> torch.Tensor:
    """Label the three bands a cyclic shift creates along one axis (0, 1, 2)."""
    labels = torch.zeros(length, dtype=torch.long)
    labels[length - window:] = 1
    labels[length - shift:] = 2
    return labels


def shift_window_mask(padded_hw: Tuple[int, int], window: Tuple[int, int],
                      shift: Tuple[int, int]) -> torch.Tensor:
    """(num_windows, N, N) additive mask: MASKED_LOGIT between tokens of different regions.

    Regions are the bands a cyclic shift wraps around (the same 3x3 labelling as the
    official code), computed on the padded map as the references do.
    """
    (hp, wp), (wh, ww), (sh, sw) = padded_hw, window, shift
    label = (_region_labels(hp, wh, sh)[:, None] * 3 + _region_labels(wp, ww, sw)[None, :])
    label = label.view(hp // wh, wh, wp // ww, ww).transpose(1, 2).reshape(-1, wh * ww)
    differs = label[:, :, None] != label[:, None, :]
    return torch.zeros(differs.shape).masked_fill_(differs, MASKED_LOGIT)


@dataclass(frozen=True)
class WindowGeometry:
    """How a (H, W) map is cut into windows for one block kind (shifted or not)."""
    hw: Tuple[int, int]
    window: Tuple[int, int]
    shift: Tuple[int, int]
    mask: Optional[torch.Tensor]  # (num_windows, N, N) or None without shift

    @classmethod
    def build(cls, hw, window, shift, device) -> 'WindowGeometry':
        padded = tuple(-(-size // win) * win for size, win in zip(hw, window))
        mask = None
        if any(shift):
            mask = shift_window_mask(padded, window, shift).to(device)
        return cls(tuple(hw), tuple(window), tuple(shift), mask)

    @property
    def padding(self) -> Tuple[int, int]:
        return tuple((-size) % win for size, win in zip(self.hw, self.window))

    def partition(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B * num_windows, h * w, C): pad bottom/right, shift, cut."""
        (wh, ww), (sh, sw), (pb, pr) = self.window, self.shift, self.padding
        if pb or pr:
            x = F.pad(x, (0, 0, 0, pr, 0, pb))
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        b, hp, wp, c = x.shape
        x = x.view(b, hp // wh, wh, wp // ww, ww, c).transpose(2, 3)
        return x.reshape(-1, wh * ww, c)

    def merge(self, windows: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`partition`: (B * num_windows, h * w, C) -> (B, H, W, C)."""
        (h, w), (wh, ww), (sh, sw), (pb, pr) = self.hw, self.window, self.shift, self.padding
        hp, wp, c = h + pb, w + pr, windows.shape[-1]
        x = windows.view(-1, hp // wh, wp // ww, wh, ww, c).transpose(2, 3)
        x = x.reshape(-1, hp, wp, c)
        if sh or sw:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        if pb or pr:
            x = x[:, :h, :w]
        return x
