"""The extra global self-attention layer of HTC++ (Swin paper, appendix A2.2).

One pre-norm transformer layer over all tokens of the last stage. Its two residual
branches end in zero-initialised projections, so inserting it into a pretrained
backbone is an exact identity until training moves those weights.

Cost on an (h, w) last-stage map with C channels and n = h*w tokens: 12*n*C^2 MACs in
its linear layers plus 2*n^2*C in attention; memory grows with n^2 per head only
inside the fused attention kernel. For a 1344x800 image (n = 42*25 = 1050, Swin-B
C = 1024) that is about 15.5 GMACs, a few percent of the backbone.
"""
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer

from ..kernels import Kernels
from .swin_block import SwinFFN, drop_path


class GlobalSelfAttention(nn.Module):
    """Multi-head self-attention over every token of a (B, H, W, C) map.

    Args:
        embed_dims (int): channels of the tokens.
        num_heads (int): attention heads; must divide `embed_dims`.
        qkv_bias (bool): add a learned bias to q, k and v. Default: True.
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: torch.Tensor, kernels: Kernels) -> torch.Tensor:
        b, h, w, c = x.shape
        qkv = self.qkv(x.reshape(b, h * w, c))
        qkv = qkv.view(b, h * w, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = kernels.attention(q, k, v, None, None)
        return self.proj(out.transpose(1, 2).reshape(b, h, w, c))


class GlobalAttentionLayer(nn.Module):
    """x + attn(norm1(x)), then x + ffn(norm2(x)); starts as the identity.

    Args:
        embed_dims (int): channels of the tokens.
        num_heads (int): attention heads; must divide `embed_dims`.
        mlp_ratio (float): MLP hidden channels per token channel. Default: 4.
        drop_path_rate (float): stochastic depth of both branches. Default: 0.
        qkv_bias (bool): add a learned bias to q, k and v. Default: True.
        act_cfg (dict): the MLP's activation. Default: ``dict(type='GELU')``.
        norm_cfg (dict): the two norms. Default: ``dict(type='LN')``.
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float = 4.,
                 drop_path_rate: float = 0., qkv_bias: bool = True,
                 act_cfg: dict = dict(type='GELU'), norm_cfg: dict = dict(type='LN')):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'global attention: embed_dims {embed_dims} must be divisible '
                             f'by num_heads, got num_heads={num_heads}')
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = GlobalSelfAttention(embed_dims, num_heads, qkv_bias)
        self.drop_path = drop_path(drop_path_rate)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = SwinFFN(embed_dims, int(mlp_ratio * embed_dims), act_cfg)
        self.zero_init_residuals()

    def zero_init_residuals(self) -> None:
        """Zero the last projection of both branches so the layer is an identity."""
        for last in (self.attn.proj, self.ffn.layers[1]):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor, kernels: Kernels) -> torch.Tensor:
        """x: (B, H, W, C); `kernels`: those selected for this forward
        (:func:`swin_mm.kernels.select_kernels`)."""
        x = x + self.drop_path(self.attn(self.norm1(x), kernels))
        return x + self.drop_path(self.ffn(self.norm2(x), kernels))
