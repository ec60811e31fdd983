"""Building blocks of the Swin backbone, named so that state dicts match mmdet/mmseg.

Tokens travel between blocks as channels-last maps (B, H, W, C); window attention
gets them already partitioned by the stage's :class:`WindowGeometry`. Every forward
takes the :class:`swin_mm.kernels.Kernels` that implement its hot ops. ``shape_generic``
(set while a graph is captured for export) makes padding branch-free and the window
geometry a function of the traced shape (:class:`ShapeGenericGeometry`).
"""
from collections import OrderedDict
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks.drop import DropPath

from ..kernels import Kernels
from ..kernels.compat import is_compiling
from .windows import (
    ShapeGenericGeometry, WindowGeometry, relative_position_index, window_count
)

GEOMETRY_CACHE_SIZE = 8


def _drop_path(rate: float) -> nn.Module:
    return DropPath(rate) if rate > 0 else nn.Identity()


def pad_to_multiple(x: torch.Tensor, multiple: int, channels_last: bool = False,
                    shape_generic: bool = False) -> torch.Tensor:
    """Zero-pad an NCHW (or NHWC) tensor on the bottom and right up to a multiple of
    `multiple`. Skips the copy when nothing is missing, except when `shape_generic`:
    then the pad is always recorded, with amounts computed from the shape."""
    h, w = x.shape[1:3] if channels_last else x.shape[-2:]
    pad_h = window_count(h, multiple) * multiple - h
    pad_w = window_count(w, multiple) * multiple - w
    if not shape_generic and not (pad_h or pad_w):
        return x
    return F.pad(x, (0, 0, 0, pad_w, 0, pad_h) if channels_last else (0, pad_w, 0, pad_h))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias.

    The bias (and the shift mask, when given) enter as one additive mask; see
    :mod:`swin_mm.kernels.attention` for the kernels.
    """

    def __init__(self, embed_dims: int, num_heads: int, window: Tuple[int, int],
                 qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 attn_drop_rate: float = 0., proj_drop_rate: float = 0.):
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5
        self.attn_drop_rate = attn_drop_rate
        num_offsets = (2 * window[0] - 1) * (2 * window[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(num_offsets, num_heads))
        # Persistent, as in mmdet/mmseg, so their checkpoints load without unexpected keys.
        self.register_buffer('relative_position_index', relative_position_index(window))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def position_bias(self) -> torch.Tensor:
        """(heads, N, N) bias gathered from the table, contiguous: the permuted gather
        has stride `heads` in its last dimension, and torch 2.3-2.7's CPU flash kernel
        misreads such a mask (NaN or wrong numbers, no error). The copy is small."""
        n = self.window[0] * self.window[1]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1).contiguous()

    def attn_mask(self, shift_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """The additive mask the kernels get: (1, heads, N, N), or (nW, heads, N, N)
        with a (nW, N, N) shift mask; contiguous either way."""
        attn_mask = self.position_bias().unsqueeze(0)      # broadcasts over windows
        if shift_mask is not None:
            attn_mask = attn_mask + shift_mask.unsqueeze(1)
        return attn_mask

    def forward(self, windows: torch.Tensor, shift_mask: Optional[torch.Tensor],
                kernels: Kernels) -> torch.Tensor:
        """windows: (B * nW, N, C); shift_mask: (nW, N, N) or None."""
        out = kernels.window_attention(windows, self.qkv, self.attn_mask(shift_mask),
                                       self.num_heads, self.scale,
                                       self.attn_drop_rate if self.training else 0.)
        return self.proj_drop(self.proj(out))


class ShiftWindowAttention(nn.Module):
    """(Shifted) window attention on a (B, H, W, C) map; holds `w_msa` as the peers do."""

    def __init__(self, embed_dims: int, num_heads: int, window: Tuple[int, int],
                 shifted: bool, qkv_bias: bool, qk_scale: Optional[float],
                 attn_drop_rate: float, proj_drop_rate: float, drop_path_rate: float):
        super().__init__()
        self.shifted = shifted
        self.w_msa = WindowAttention(embed_dims, num_heads, window, qkv_bias, qk_scale,
                                     attn_drop_rate, proj_drop_rate)
        self.drop = _drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor, geometry: WindowGeometry,
                kernels: Kernels) -> torch.Tensor:
        windows = self.w_msa(geometry.partition(x, kernels), geometry.mask, kernels)
        return self.drop(geometry.merge(windows, kernels))


class SwinFFN(nn.Module):
    """Two-layer MLP; `layers.0.0` / `layers.1` match mmcv's FFN key names."""

    def __init__(self, embed_dims: int, hidden_dims: int, act_cfg: dict,
                 drop_rate: float = 0., drop_path_rate: float = 0.):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, hidden_dims), build_activation_layer(act_cfg),
                          nn.Dropout(drop_rate)),
            nn.Linear(hidden_dims, embed_dims),
            nn.Dropout(drop_rate))
        self.dropout_layer = _drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor, kernels: Kernels) -> torch.Tensor:
        (fc1, act, drop_hidden), fc2, drop_out = self.layers[0], self.layers[1], self.layers[2]
        dropping = self.training and (drop_hidden.p > 0 or drop_out.p > 0)
        if isinstance(act, nn.GELU) and act.approximate == 'none' and not dropping:
            return self.dropout_layer(kernels.gelu_mlp(x, fc1, fc2))
        return self.dropout_layer(self.layers(x))


class SwinBlock(nn.Module):
    """Pre-norm block: x + attn(norm1(x)), then x + ffn(norm2(x))."""

    def __init__(self, embed_dims: int, num_heads: int, hidden_dims: int,
                 window: Tuple[int, int], shifted: bool, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 act_cfg: dict = dict(type='GELU'), norm_cfg: dict = dict(type='LN')):
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = ShiftWindowAttention(embed_dims, num_heads, window, shifted, qkv_bias,
                                         qk_scale, attn_drop_rate, drop_rate, drop_path_rate)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = SwinFFN(embed_dims, hidden_dims, act_cfg, drop_rate, drop_path_rate)

    def forward(self, x: torch.Tensor, geometry: WindowGeometry,
                kernels: Kernels) -> torch.Tensor:
        # In place on each branch's fresh output: no extra (B, H, W, C) buffer per add.
        x = self.attn(self.norm1(x), geometry, kernels).add_(x)
        return self.ffn(self.norm2(x), kernels).add_(x)


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding; pads the image bottom/right to a patch multiple."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int,
                 norm_cfg: Optional[dict]):
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1] if norm_cfg else None

    def forward(self, images: torch.Tensor, shape_generic: bool = False) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, ceil(H/p), ceil(W/p), C)."""
        images = pad_to_multiple(images, self.patch_size, shape_generic=shape_generic)
        x = self.projection(images).permute(0, 2, 3, 1)
        return self.norm(x) if self.norm is not None else x


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> one token with twice the channels.

    Concatenates channels in the order of mmcv's ``nn.Unfold`` merging (channel-major,
    then kernel position row by row), so mmdet/mmseg weights apply unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: Optional[dict]):
        super().__init__()
        self.out_channels = out_channels
        self.norm = build_norm_layer(norm_cfg, 4 * in_channels)[1] if norm_cfg else None
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, x: torch.Tensor, shape_generic: bool = False) -> torch.Tensor:
        if shape_generic:
            x = self._gather_neighbourhoods(x)
        else:
            b, h, w, c = x.shape
            x = pad_to_multiple(x, 2, channels_last=True)
            h2, w2 = window_count(h, 2), window_count(w, 2)
            x = x.view(b, h2, 2, w2, 2, c).permute(0, 1, 3, 5, 2, 4).reshape(b, h2, w2, 4 * c)
        if self.norm is not None:
            x = self.norm(x)
        return self.reduction(x)

    @staticmethod
    def _gather_neighbourhoods(x: torch.Tensor) -> torch.Tensor:
        """The same (B, H/2, W/2, 4C) as the eager path, for graph capture: the 2x2
        neighbourhoods are unshifted 2x2 windows, cut by :class:`ShapeGenericGeometry`
        (no pad + view + permute of the map, which would make torch.export guard on its
        size), then one gather of channels into mmcv's order (a 4D view would guard too)."""
        b, h, w, c = x.shape
        neighbourhoods = ShapeGenericGeometry((h, w), (2, 2), (0, 0), x.device).partition(x)
        position_major = torch.arange(4 * c, device=x.device).view(4, c).t().flatten()
        h2, w2 = window_count(h, 2), window_count(w, 2)
        x = neighbourhoods.view(b, h2 * w2, 4 * c).index_select(-1, position_major)
        return x.view(b, h2, w2, 4 * c)


class SwinStage(nn.Module):
    """Blocks alternating plain and shifted windows, then optional patch merging.

    Window geometries are computed once per input size and device and reused by every
    block (and every later forward) of the stage.
    """

    def __init__(self, embed_dims: int, num_heads: int, hidden_dims: int, depth: int,
                 window: Tuple[int, int], drop_path_rates: Sequence[float],
                 downsample: Optional[nn.Module], with_cp: bool = False, **block_kwargs):
        super().__init__()
        self.window = window
        self.shift = (window[0] // 2, window[1] // 2)
        self.with_cp = with_cp
        self.blocks = nn.ModuleList(
            SwinBlock(embed_dims, num_heads, hidden_dims, window, shifted=i % 2 == 1,
                      drop_path_rate=drop_path_rates[i], **block_kwargs)
            for i in range(depth))
        self.downsample = downsample
        self._geometry_cache = OrderedDict()

    def geometries(self, hw: Tuple[int, int], device: torch.device):
        """(plain, shifted) geometries for a map of size hw.

        Kept for the most recent GEOMETRY_CACHE_SIZE sizes per stage: multi-scale
        training meets hundreds of sizes, and a large map's shift mask is ~10 MB.
        """
        if is_compiling():  # traced once into the graph instead
            return self._build_geometries(hw, device)
        key = (hw, device)
        cached = self._geometry_cache.pop(key, None) or self._build_geometries(hw, device)
        self._geometry_cache[key] = cached  # most recently used last
        while len(self._geometry_cache) > GEOMETRY_CACHE_SIZE:
            self._geometry_cache.popitem(last=False)
        return cached

    def _build_geometries(self, hw, device):
        return (WindowGeometry.build(hw, self.window, (0, 0), device),
                WindowGeometry.build(hw, self.window, self.shift, device))

    def forward(self, x: torch.Tensor, kernels: Kernels,
                shape_generic: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns (stage output, input of the next stage)."""
        if shape_generic:
            plain, shifted = (ShapeGenericGeometry(x.shape[1:3], self.window, shift, x.device)
                              for shift in ((0, 0), self.shift))
        else:
            plain, shifted = self.geometries(tuple(x.shape[1:3]), x.device)
        for i, block in enumerate(self.blocks):
            geometry = shifted if i % 2 else plain
            if self.with_cp and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, geometry, kernels,
                                                      use_reentrant=False)
            else:
                x = block(x, geometry, kernels)
        if self.downsample is None:
            return x, x
        return x, self.downsample(x, shape_generic)
