"""The Swin V1 block: pre-norm residuals around shifted-window attention with a learned
relative position bias table, and a GELU MLP.

Blocks work on channels-last (B, H, W, C) maps. A block gets its windows from the
:class:`~swin_mm.geometry.WindowGeometry` its stage picked for this forward, and runs its
hot ops through the :class:`~swin_mm.kernels.Kernels` selected for it.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks.drop import DropPath

from ..geometry import WindowGeometry, relative_position_index
from ..kernels import Kernels


def drop_path(rate: float) -> nn.Module:
    """Stochastic depth at `rate`, or the identity at 0."""
    return DropPath(rate) if rate > 0 else nn.Identity()


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias.

    The bias (and the shift mask, when given) enter as one additive mask; see
    :mod:`swin_mm.kernels.attention` for the kernels.

    Args:
        embed_dims (int): channels of the tokens.
        num_heads (int): attention heads; must divide `embed_dims`.
        window (tuple[int, int]): window (height, width) in tokens.
        qkv_bias (bool): add a learned bias to q, k and v. Default: True.
        qk_scale (float, optional): logit scale; None means head_dims ** -0.5.
            Default: None.
        attn_drop_rate (float): dropout on the attention probabilities. Default: 0.
        proj_drop_rate (float): dropout after the output projection. Default: 0.
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
    """(Shifted) window attention on a (B, H, W, C) map; holds `w_msa` as the peers do.

    Whether the windows are shifted is the geometry's business (the stage gives shifted
    blocks the shifted geometry); this module partitions, attends and merges.

    Args:
        embed_dims, num_heads, window, qkv_bias, qk_scale, attn_drop_rate,
        proj_drop_rate: those of :class:`WindowAttention`, with the same defaults.
        drop_path_rate (float): stochastic depth of the branch. Default: 0.
    """

    def __init__(self, embed_dims: int, num_heads: int, window: Tuple[int, int],
                 qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 attn_drop_rate: float = 0., proj_drop_rate: float = 0.,
                 drop_path_rate: float = 0.):
        super().__init__()
        self.w_msa = WindowAttention(embed_dims, num_heads, window, qkv_bias, qk_scale,
                                     attn_drop_rate, proj_drop_rate)
        self.drop = drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor, geometry: WindowGeometry,
                kernels: Kernels) -> torch.Tensor:
        windows = self.w_msa(geometry.partition(x), geometry.mask, kernels)
        return self.drop(geometry.merge(windows))


class SwinFFN(nn.Module):
    """Two-layer MLP; `layers.0.0` / `layers.1` match mmcv's FFN key names.

    Args:
        embed_dims (int): input and output channels.
        hidden_dims (int): hidden channels.
        act_cfg (dict): activation config (mmcv). Default: ``dict(type='GELU')``.
        drop_rate (float): dropout after the activation and after the output.
            Default: 0.
        drop_path_rate (float): stochastic depth of the branch. Default: 0.
    """

    def __init__(self, embed_dims: int, hidden_dims: int, act_cfg: dict = dict(type='GELU'),
                 drop_rate: float = 0., drop_path_rate: float = 0.):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, hidden_dims), build_activation_layer(act_cfg),
                          nn.Dropout(drop_rate)),
            nn.Linear(hidden_dims, embed_dims),
            nn.Dropout(drop_rate))
        self.dropout_layer = drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor, kernels: Kernels) -> torch.Tensor:
        return self.dropout_layer(kernels.mlp(x, self.layers))


class SwinBlock(nn.Module):
    """Pre-norm block: x + attn(norm1(x)), then x + ffn(norm2(x)).

    Args:
        embed_dims (int): channels of the tokens.
        num_heads (int): attention heads.
        hidden_dims (int): hidden channels of the MLP.
        window (tuple[int, int]): window (height, width) in tokens.
        qkv_bias (bool): add a learned bias to q, k and v. Default: True.
        qk_scale (float, optional): logit scale; None means head_dims ** -0.5.
            Default: None.
        drop_rate (float): dropout after the attention projection and in the MLP.
            Default: 0.
        attn_drop_rate (float): dropout on the attention probabilities. Default: 0.
        drop_path_rate (float): stochastic depth of both branches. Default: 0.
        act_cfg (dict): the MLP's activation. Default: ``dict(type='GELU')``.
        norm_cfg (dict): the two norms. Default: ``dict(type='LN')``.
    """

    def __init__(self, embed_dims: int, num_heads: int, hidden_dims: int,
                 window: Tuple[int, int], qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 act_cfg: dict = dict(type='GELU'), norm_cfg: dict = dict(type='LN')):
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = ShiftWindowAttention(embed_dims, num_heads, window, qkv_bias, qk_scale,
                                         attn_drop_rate, drop_rate, drop_path_rate)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = SwinFFN(embed_dims, hidden_dims, act_cfg, drop_rate, drop_path_rate)

    def forward(self, x: torch.Tensor, geometry: WindowGeometry,
                kernels: Kernels) -> torch.Tensor:
        # In place on each branch's fresh output: no extra (B, H, W, C) buffer per add.
        x = self.attn(self.norm1(x), geometry, kernels).add_(x)
        return self.ffn(self.norm2(x), kernels).add_(x)
