"""A Swin stage: blocks alternating plain and shifted windows, then optional downsampling.

Variant-agnostic: it takes the blocks it runs (V1's :class:`~.swin_block.SwinBlock`, or
another variant's with the same ``block(x, geometry, kernels)`` call) and its
downsampling layer (``downsample(x, neighbourhoods)``), and picks the window geometry
once per forward (:class:`~swin_mm.geometry.StageGeometry`).
"""
from typing import Iterable, Optional, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint

from ..geometry import StageGeometry
from ..kernels import Kernels


class SwinStage(nn.Module):
    """Blocks alternating plain and shifted windows (odd blocks shifted by half a
    window), then optional patch merging.

    Args:
        blocks (Iterable[nn.Module]): the blocks, called as ``block(x, geometry, kernels)``.
        window (tuple[int, int]): window (height, width) in tokens.
        downsample (nn.Module, optional): called as ``downsample(x, neighbourhoods)`` on
            the stage output, or None in the last stage. Default: None.
        with_cp (bool): recompute each block in backward (activation checkpointing)
            instead of keeping its activations. Default: False.
    """

    def __init__(self, blocks: Iterable[nn.Module], window: Tuple[int, int],
                 downsample: Optional[nn.Module] = None, with_cp: bool = False):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample
        self.with_cp = with_cp
        self.geometry = StageGeometry(window, (window[0] // 2, window[1] // 2),
                                      neighbourhoods=downsample is not None)

    def forward(self, x: torch.Tensor, kernels: Kernels) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns (stage output, input of the next stage)."""
        plain, shifted, neighbourhoods = self.geometry(x, kernels)
        for i, block in enumerate(self.blocks):
            geometry = shifted if i % 2 else plain
            if self.with_cp and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, geometry, kernels,
                                                      use_reentrant=False)
            else:
                x = block(x, geometry, kernels)
        if self.downsample is None:
            return x, x
        return x, self.downsample(x, neighbourhoods)
