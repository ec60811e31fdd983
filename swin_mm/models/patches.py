"""Patch embedding (image -> tokens) and the V1 patch merging (2x2 tokens -> one)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer

from ..geometry import WindowGeometry, window_count


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding; pads the image bottom/right to a patch multiple.

    Args:
        in_channels (int): channels of the input image.
        embed_dims (int): channels of the tokens.
        patch_size (int): side of a patch, in pixels (also the stride).
        norm_cfg (dict, optional): norm after the projection, or None for none.
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int,
                 norm_cfg: Optional[dict]):
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1] if norm_cfg else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, ceil(H/p), ceil(W/p), C). The pad is always recorded,
        with amounts computed from the shape, so a captured graph holds at every size."""
        (h, w), p = images.shape[-2:], self.patch_size
        images = F.pad(images, (0, window_count(w, p) * p - w, 0, window_count(h, p) * p - h))
        x = self.projection(images).permute(0, 2, 3, 1)
        return self.norm(x) if self.norm is not None else x


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> one token with twice the channels: norm, then reduction.

    Concatenates channels in the order of mmcv's ``nn.Unfold`` merging (channel-major,
    then kernel position row by row), so mmdet/mmseg weights apply unchanged. The 2x2
    neighbourhoods (bottom/right padded) are unshifted 2x2 windows, cut by the
    `neighbourhoods` geometry the stage picked for this forward.

    Args:
        in_channels (int): channels of the input tokens; the output has twice as many.
        norm_cfg (dict, optional): norm over the 4 * in_channels concatenation, or None.
    """

    def __init__(self, in_channels: int, norm_cfg: Optional[dict]):
        super().__init__()
        self.norm = build_norm_layer(norm_cfg, 4 * in_channels)[1] if norm_cfg else None
        self.reduction = nn.Linear(4 * in_channels, 2 * in_channels, bias=False)

    def forward(self, x: torch.Tensor, neighbourhoods: WindowGeometry) -> torch.Tensor:
        """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C)."""
        b, h, w, c = x.shape
        windows = neighbourhoods.partition(x)                 # (B * H/2 * W/2, 4, C)
        x = windows.transpose(1, 2).reshape(b, window_count(h, 2), window_count(w, 2), 4 * c)
        if self.norm is not None:
            x = self.norm(x)
        return self.reduction(x)
