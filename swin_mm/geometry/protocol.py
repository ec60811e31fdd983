"""The one interface of a window geometry, whichever way it computes its indices."""
from typing import Optional, Protocol

import torch


class WindowGeometry(Protocol):
    """What a block needs from a geometry: its windows, their inverse, and the mask."""
    mask: Optional[torch.Tensor]  # (num_windows, N, N) additive shift mask, or None

    def partition(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B * num_windows, N, C): pad bottom/right, shift, cut."""

    def merge(self, windows: torch.Tensor) -> torch.Tensor:
        """(B * num_windows, N, C) -> (B, H, W, C): the inverse, padding cropped."""
