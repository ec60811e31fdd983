"""The Swin V2 block (Liu et al., CVPR 2022): residual post-norm around shifted-window
scaled cosine attention with a continuous position bias, and a GELU MLP.

The official block, with the plugin's geometry: windows come from the
:class:`~swin_mm.geometry.WindowGeometry` the stage picked (padding before the roll, the
shift mask on the padded grid, windows never shrunk), attention runs through the
selected kernels' ``cosine_window_attention`` (:mod:`swin_mm.kernels.cosine_attention`).
Key names follow mmpretrain's ``SwinTransformerV2`` (``attn.w_msa.*``, ``ffn.layers.*``).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer

from ..compat import capturing_graph, is_compiling
from ..geometry import (
    WindowGeometry, log_spaced_relative_coords, relative_position_index, window_count
)
from ..kernels import Kernels
from .swin_block import SwinFFN, drop_path

# The logit scale's clamp, log(1 / 0.01), and its initial value, log(10): the official code's.
MAX_LOGIT_SCALE = math.log(100.)
INITIAL_LOGIT_SCALE = math.log(10.)
CPB_HIDDEN = 512      # hidden width of the continuous position bias MLP
CPB_RANGE = 16.       # the bias is CPB_RANGE * sigmoid(MLP output)


class WindowCosineAttention(nn.Module):
    """Multi-head scaled cosine attention inside each window, with a continuous position
    bias: an MLP (2 -> 512 -> heads) on log-spaced relative coordinates normalised by the
    pretrained window (:func:`~swin_mm.geometry.log_spaced_relative_coords`), then
    16 * sigmoid. The bias depends on parameters only, so in eval mode without gradients
    it is computed once per device and dtype and kept until a parameter of the MLP
    changes (training recomputes it every forward).

    Args:
        embed_dims (int): channels of the tokens.
        num_heads (int): attention heads; must divide `embed_dims`.
        window (tuple[int, int]): window (height, width) in tokens.
        pretrained_window (tuple[int, int]): window the weights were trained with, which
            normalises the coordinates; (0, 0) means `window`.
        qkv_bias (bool): learned q and v biases (the k bias is zero). Default: True.
        attn_drop_rate (float): dropout on the attention probabilities. Default: 0.
        proj_drop_rate (float): dropout after the output projection. Default: 0.
    """

    def __init__(self, embed_dims: int, num_heads: int, window: Tuple[int, int],
                 pretrained_window: Tuple[int, int], qkv_bias: bool = True,
                 attn_drop_rate: float = 0., proj_drop_rate: float = 0.):
        super().__init__()
        self.num_heads, self.window = num_heads, tuple(window)
        self.pretrained_window = tuple(pretrained_window)
        self.attn_drop_rate = attn_drop_rate
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), INITIAL_LOGIT_SCALE))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, CPB_HIDDEN), nn.ReLU(inplace=True),
                                     nn.Linear(CPB_HIDDEN, num_heads, bias=False))
        # Derived from the windows: never saved, never read from a file.
        self.register_buffer('relative_coords_table',
                             log_spaced_relative_coords(self.window, self.pretrained_window),
                             persistent=False)
        self.register_buffer('relative_position_index', relative_position_index(self.window),
                             persistent=False)
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(embed_dims))
            self.v_bias = nn.Parameter(torch.zeros(embed_dims))
        else:
            self.q_bias = self.v_bias = None
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)
        self._cached_bias = None  # (key, (heads, N, N) bias) in eval mode

    def compute_position_bias(self) -> torch.Tensor:
        """(heads, N, N) bias 16 * sigmoid(MLP(coordinates)), gathered per token pair."""
        n = self.window[0] * self.window[1]
        table = self.cpb_mlp(self.relative_coords_table)          # (offsets, heads)
        bias = table[self.relative_position_index.view(-1)].view(n, n, self.num_heads)
        return CPB_RANGE * torch.sigmoid(bias.permute(2, 0, 1)).contiguous()

    def position_bias(self, capturing: bool) -> torch.Tensor:
        """:meth:`compute_position_bias`, cached in eval mode where no gradient can flow
        into it (and never while a graph is captured or compiled)."""
        params = list(self.cpb_mlp.parameters())
        cacheable = not (self.training or capturing or is_compiling()
                         or (torch.is_grad_enabled() and any(p.requires_grad for p in params)))
        if not cacheable:
            self._cached_bias = None
            return self.compute_position_bias()
        key = (self.relative_coords_table.device, self.relative_coords_table.dtype,
               tuple(p._version for p in params), tuple(p.data_ptr() for p in params))
        if self._cached_bias is None or self._cached_bias[0] != key:
            self._cached_bias = (key, self.compute_position_bias())
        return self._cached_bias[1]

    def qkv_bias(self) -> Optional[torch.Tensor]:
        """cat(q_bias, 0, v_bias), or None without biases."""
        if self.q_bias is None:
            return None
        return torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))

    def forward(self, windows: torch.Tensor, shift_mask: Optional[torch.Tensor],
                kernels: Kernels) -> torch.Tensor:
        """windows: (B * nW, N, C); shift_mask: (nW, N, N) or None."""
        attn_mask = self.position_bias(capturing_graph(windows)).unsqueeze(0)
        if shift_mask is not None:
            attn_mask = attn_mask + shift_mask.unsqueeze(1)
        scale = torch.clamp(self.logit_scale, max=MAX_LOGIT_SCALE).exp()
        out = kernels.cosine_window_attention(
            windows, self.qkv.weight, self.qkv_bias(), scale, attn_mask, self.num_heads,
            self.attn_drop_rate if self.training else 0.)
        return self.proj_drop(self.proj(out))


class ShiftWindowCosineAttention(nn.Module):
    """(Shifted) window cosine attention on a (B, H, W, C) map; holds `w_msa` as
    mmpretrain does. Partitions, attends and merges; the block adds norm and drop path.

    Args:
        embed_dims, num_heads, window, pretrained_window, qkv_bias, attn_drop_rate,
        proj_drop_rate: those of :class:`WindowCosineAttention`, with the same defaults.
    """

    def __init__(self, embed_dims: int, num_heads: int, window: Tuple[int, int],
                 pretrained_window: Tuple[int, int], qkv_bias: bool = True,
                 attn_drop_rate: float = 0., proj_drop_rate: float = 0.):
        super().__init__()
        self.w_msa = WindowCosineAttention(embed_dims, num_heads, window, pretrained_window,
                                           qkv_bias, attn_drop_rate, proj_drop_rate)

    def forward(self, x: torch.Tensor, geometry: WindowGeometry,
                kernels: Kernels) -> torch.Tensor:
        return geometry.merge(self.w_msa(geometry.partition(x), geometry.mask, kernels))


class SwinV2Block(nn.Module):
    """Residual post-norm block: x + drop_path(norm1(attn(x))), then
    x + drop_path(norm2(ffn(x))), then norm3 if `extra_norm`.

    Args:
        embed_dims (int): channels of the tokens.
        num_heads (int): attention heads.
        hidden_dims (int): hidden channels of the MLP.
        window (tuple[int, int]): window (height, width) in tokens.
        pretrained_window (tuple[int, int]): pretrained window, (0, 0) for `window`.
        qkv_bias (bool): learned q and v biases. Default: True.
        drop_rate (float): dropout after the attention projection and in the MLP.
            Default: 0.
        attn_drop_rate (float): dropout on the attention probabilities. Default: 0.
        drop_path_rate (float): stochastic depth of both branches. Default: 0.
        act_cfg (dict): the MLP's activation. Default: ``dict(type='GELU')``.
        norm_cfg (dict): the post-norms. Default: ``dict(type='LN')``.
        extra_norm (bool): a third norm on the block's output (the paper's H and G
            sizes have one every 6 blocks). Default: False.
    """

    def __init__(self, embed_dims: int, num_heads: int, hidden_dims: int,
                 window: Tuple[int, int], pretrained_window: Tuple[int, int],
                 qkv_bias: bool = True, drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0., act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'), extra_norm: bool = False):
        super().__init__()
        self.attn = ShiftWindowCosineAttention(embed_dims, num_heads, window,
                                               pretrained_window, qkv_bias, attn_drop_rate,
                                               drop_rate)
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = SwinFFN(embed_dims, hidden_dims, act_cfg, drop_rate)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.drop_path = drop_path(drop_path_rate)
        self.norm3 = build_norm_layer(norm_cfg, embed_dims)[1] if extra_norm else None

    def forward(self, x: torch.Tensor, geometry: WindowGeometry,
                kernels: Kernels) -> torch.Tensor:
        x = x + self.drop_path(self.norm1(self.attn(x, geometry, kernels)))
        x = x + self.drop_path(self.norm2(self.ffn(x, kernels)))
        return x if self.norm3 is None else self.norm3(x)


class PatchMergingV2(nn.Module):
    """2x2 neighbourhood -> one token with twice the channels: reduction, then norm.

    Concatenates the four tokens in the official order (row offset first: (0, 0),
    (1, 0), (0, 1), (1, 1)), so official weights apply unchanged. The neighbourhoods
    (bottom/right zero-padded) are unshifted 2x2 windows cut by the `neighbourhoods`
    geometry the stage picked.

    Args:
        in_channels (int): channels of the input tokens; the output has twice as many.
        norm_cfg (dict): norm over the 2 * in_channels output. Default: ``dict(type='LN')``.
    """

    # Window slots of a 2x2 neighbourhood are row-major: (0,0), (0,1), (1,0), (1,1).
    OFFICIAL_ORDER = [0, 2, 1, 3]

    def __init__(self, in_channels: int, norm_cfg: dict = dict(type='LN')):
        super().__init__()
        self.reduction = nn.Linear(4 * in_channels, 2 * in_channels, bias=False)
        self.norm = build_norm_layer(norm_cfg, 2 * in_channels)[1]

    def forward(self, x: torch.Tensor, neighbourhoods: WindowGeometry) -> torch.Tensor:
        """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C)."""
        b, h, w, c = x.shape
        windows = neighbourhoods.partition(x)[:, self.OFFICIAL_ORDER]  # (B * H/2 * W/2, 4, C)
        x = windows.reshape(b, window_count(h, 2), window_count(w, 2), 4 * c)
        return self.norm(self.reduction(x))
