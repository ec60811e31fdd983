"""SwinBackbone: a drop-in Swin Transformer backbone for mmdet 3.x and mmseg 1.x."""
import warnings
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmengine.registry import MODELS

from ..checkpoints.fitting import FitTarget, fit_state_dict
from ..checkpoints.loading import load_pretrained
from ..compat import capturing_graph
from ..kernels import prepare_kernels, select_kernels
from ..kernels.custom_functions import DEFAULT_SCRATCH_BYTES
from .global_attention import GlobalAttentionLayer
from .patches import PatchEmbed, PatchMerging
from .stage import SwinStage
from .swin_block import SwinBlock, WindowAttention


def _pair(value, name: str) -> Tuple[int, int]:
    if isinstance(value, int):
        return value, value
    value = tuple(value)
    if len(value) == 1:
        return value[0], value[0]
    if len(value) != 2:
        raise ValueError(f'{name} must be an int or a pair of ints, got {value!r}')
    return value


@MODELS.register_module()
class SwinBackbone(BaseModule):
    """Swin Transformer (Liu et al., ICCV 2021) emitting four normalised NCHW stages.

    Accepts every argument of mmdet 3.3's and mmseg 1.2's ``SwinTransformer`` with the
    same meaning and defaults, and has the same state-dict names, so their configs and
    checkpoints work by changing only ``type``. Registered in mmengine's root model
    registry, hence visible under the mmdet, mmseg and mmpretrain scopes. The published
    sizes are in :data:`swin_mm.models.ARCH_ZOO` (defaults: Swin-T).

    Differences that are fixes: ``frozen_stages`` is applied at construction (so DDP
    sees the frozen parameters), ``use_abs_pos_embed`` is interpolated to any input
    size, ``window_size`` may be a (h, w) pair, and ``convert_weights`` is accepted but
    unnecessary: checkpoint layouts are detected when loading.

    Args:
        pretrain_img_size (int | tuple[int, int]): image size of the pretraining, which
            sizes the absolute position embedding. Default: 224.
        in_channels (int): channels of the input images. Default: 3.
        embed_dims (int): channels of stage 0; stage i has ``embed_dims * 2**i``.
            Default: 96.
        patch_size (int): side of a patch, in pixels. Default: 4.
        window_size (int | tuple[int, int]): window side(s) in tokens. Default: 7.
        mlp_ratio (float): MLP hidden channels per token channel. Default: 4.
        depths (Sequence[int]): blocks per stage. Default: (2, 2, 6, 2).
        num_heads (Sequence[int]): attention heads per stage. Default: (3, 6, 12, 24).
        strides (Sequence[int]): downsampling per stage: ``patch_size``, then 2 (patch
            merging); other values are refused. Default: (4, 2, 2, 2).
        out_indices (Sequence[int]): stages whose normalised output is returned.
            Default: (0, 1, 2, 3).
        qkv_bias (bool): add a learned bias to q, k and v. Default: True.
        qk_scale (float, optional): attention logit scale; None means
            head_dims ** -0.5. Default: None.
        patch_norm (bool): norm after the patch embedding and in patch merging.
            Default: True.
        drop_rate (float): dropout after the position embedding, the attention
            projection and in the MLP. Default: 0.
        attn_drop_rate (float): dropout on the attention probabilities. Default: 0.
        drop_path_rate (float): stochastic depth, rising linearly from 0 over the blocks
            to this rate. Default: 0.1.
        use_abs_pos_embed (bool): add a learned absolute position embedding after the
            patch embedding. Default: False.
        act_cfg (dict): the MLP's activation. Default: ``dict(type='GELU')``.
        norm_cfg (dict): every norm. Default: ``dict(type='LN')``.
        with_cp (bool): recompute each block in backward (activation checkpointing)
            to save memory. Default: False.
        pretrained (str, optional): deprecated, use ``init_cfg=dict(type='Pretrained',
            checkpoint=...)``. Default: None.
        convert_weights (bool): accepted for mmdet/mmseg configs and ignored: every
            layout is detected and converted when loading. Default: False.
        frozen_stages (int): stop gradients and keep eval mode in the patch embedding
            and stages ``0 .. frozen_stages - 1`` (and their output norms); -1 freezes
            nothing. Default: -1.
        global_attn (bool | dict): add the HTC++ global self-attention layer after the
            last stage. ``True`` uses the last stage's heads; a dict may set
            ``num_heads``, ``mlp_ratio`` and ``drop_path_rate``. Default: False.
        kernels (str): ``'auto'`` runs each op (window attention, GELU MLP, window
            partition/merge) through the fastest implementation the running torch and
            the input's device provide (probed once, when the first such model is
            built); ``'reference'`` forces plain public torch ops everywhere (mmdet's
            math: explicit q*scale @ k^T + mask, softmax, @ v), for debugging,
            comparisons and export. Both give mmdet's results; see
            :mod:`swin_mm.kernels`. Default: ``'auto'``.
        scratch_bytes (int): chunk budget of the CPU kernels, which work through
            reused buffers of about this size (the fastest in a sweep; see
            :mod:`swin_mm.kernels.custom_functions`). Default: 8 MiB.
        init_cfg (dict, optional): mmengine initialisation config;
            ``dict(type='Pretrained', checkpoint=..., prefix=...)`` loads any Swin V1
            checkpoint layout. Default: None.
    """

    def __init__(self,
                 pretrain_img_size: Union[int, Tuple[int, int]] = 224,
                 in_channels: int = 3,
                 embed_dims: int = 96,
                 patch_size: int = 4,
                 window_size: Union[int, Tuple[int, int]] = 7,
                 mlp_ratio: float = 4,
                 depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 strides: Sequence[int] = (4, 2, 2, 2),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 patch_norm: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 use_abs_pos_embed: bool = False,
                 act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'),
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 convert_weights: bool = False,
                 frozen_stages: int = -1,
                 global_attn: Union[bool, dict] = False,
                 kernels: str = 'auto',
                 scratch_bytes: int = DEFAULT_SCRATCH_BYTES,
                 init_cfg: Optional[dict] = None):
        if init_cfg and pretrained:
            raise ValueError('init_cfg and pretrained cannot both be set; use init_cfg')
        if isinstance(pretrained, str):
            warnings.warn('pretrained is deprecated, use init_cfg=dict(type="Pretrained", '
                          'checkpoint=...)', DeprecationWarning)
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        elif pretrained is not None:
            raise TypeError(f'pretrained must be a str or None, got {type(pretrained).__name__}')
        super().__init__(init_cfg=init_cfg)
        depths, num_heads, out_indices = tuple(depths), tuple(num_heads), tuple(out_indices)
        window = _pair(window_size, 'window_size')
        pretrain_hw = _pair(pretrain_img_size, 'pretrain_img_size')
        _check_arguments(embed_dims, depths, num_heads, strides, patch_size, window,
                         out_indices, frozen_stages, in_channels)
        _check_options(pretrain_hw=pretrain_hw, mlp_ratio=mlp_ratio, qk_scale=qk_scale,
                       drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                       drop_path_rate=drop_path_rate, scratch_bytes=scratch_bytes,
                       flags=dict(qkv_bias=qkv_bias, patch_norm=patch_norm,
                                  use_abs_pos_embed=use_abs_pos_embed, with_cp=with_cp,
                                  convert_weights=convert_weights))
        if not isinstance(global_attn, (bool, dict)):
            raise TypeError(f'global_attn must be a bool or a dict, got {global_attn!r}')
        prepare_kernels(kernels)
        num_stages = len(depths)
        self.in_channels = in_channels
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.use_abs_pos_embed = use_abs_pos_embed
        self.kernels, self.scratch_bytes = kernels, scratch_bytes
        self.num_features = [embed_dims * 2 ** i for i in range(num_stages)]

        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size,
                                      norm_cfg if patch_norm else None)
        if use_abs_pos_embed:
            grid = [size // patch_size for size in pretrain_hw]
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1], embed_dims))
            self.pos_embed_grid = tuple(grid)
        self.drop_after_pos = nn.Dropout(p=drop_rate)

        self._add_stages(
            depths, window, drop_path_rate, with_cp,
            make_block=lambda i, _, rate: SwinBlock(
                self.num_features[i], num_heads[i], int(mlp_ratio * self.num_features[i]),
                window, qkv_bias=qkv_bias, qk_scale=qk_scale, drop_rate=drop_rate,
                attn_drop_rate=attn_drop_rate, drop_path_rate=rate, act_cfg=act_cfg,
                norm_cfg=norm_cfg),
            make_downsample=lambda i: PatchMerging(self.num_features[i],
                                                   norm_cfg if patch_norm else None))
        self._add_outputs(global_attn, dict(num_heads=num_heads[-1], mlp_ratio=mlp_ratio,
                                            drop_path_rate=drop_path_rate),
                          qkv_bias, act_cfg, norm_cfg)
        self._freeze_stages()

    def _add_stages(self, depths, window, drop_path_rate: float, with_cp: bool,
                    make_block: Callable, make_downsample: Callable) -> None:
        """``self.stages``: stage i of blocks ``make_block(i, j, drop path rate)`` (j the
        block's index in the stage), then
        ``make_downsample(i)`` but in the last stage; drop path rising linearly from 0
        over all blocks to `drop_path_rate`."""
        # On the CPU explicitly, so the model can also be built on the meta device.
        rates = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()
        self.stages = nn.ModuleList()
        for i in range(len(depths)):
            downsample = make_downsample(i) if i < len(depths) - 1 else None
            blocks = (make_block(i, j, rate)
                      for j, rate in enumerate(rates[sum(depths[:i]):sum(depths[:i + 1])]))
            self.stages.append(SwinStage(blocks, window, downsample, with_cp))

    def _add_outputs(self, global_attn: Union[bool, dict], attn_defaults: dict,
                     qkv_bias: bool, act_cfg: dict, norm_cfg: dict) -> None:
        """The optional global attention layer (`global_attn` overriding
        `attn_defaults`) and the output norms ``norm{i}`` of ``out_indices``."""
        self.global_attn = None
        if global_attn:
            options = dict(attn_defaults)
            options.update(global_attn if isinstance(global_attn, dict) else {})
            self.global_attn = GlobalAttentionLayer(
                self.num_features[-1], qkv_bias=qkv_bias, act_cfg=act_cfg,
                norm_cfg=norm_cfg, **options)
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, self.num_features[i])[1])

    # --- freezing -----------------------------------------------------------------
    def _frozen_modules(self):
        """Modules frozen by ``frozen_stages`` (mmdet's meaning)."""
        if self.frozen_stages < 0:
            return []
        frozen = [self.patch_embed, self.drop_after_pos]
        for i in range(self.frozen_stages):
            frozen.append(self.stages[i])
            if i in self.out_indices:
                frozen.append(getattr(self, f'norm{i}'))
        return frozen

    def _freeze_stages(self) -> None:
        """Stop gradients at construction, before any DDP wrapping sees the parameters."""
        if self.frozen_stages >= 0 and self.use_abs_pos_embed:
            self.absolute_pos_embed.requires_grad_(False)
        for module in self._frozen_modules():
            module.eval()
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> 'SwinBackbone':
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    # --- weights --------------------------------------------------------------------
    # State-dict layout version, which torch records in a state dict's metadata:
    # 2 = this plugin's (mmdet/mmseg) names. Files without it, or of version 1 (the
    # official and timm names, mmdet/mmseg files with a final ``norm`` or ``attn_mask``
    # buffers), are converted on loading (swin_mm.checkpoints.layouts).
    _version = 2

    def fit_target(self) -> FitTarget:
        """What loading fits incoming weights to: this model's state dict and windows."""
        windows = {f'{name}.relative_position_bias_table': module.window
                   for name, module in self.named_modules()
                   if isinstance(module, WindowAttention)}
        return FitTarget(self.state_dict(), windows, getattr(self, 'pos_embed_grid', None))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        """Fit the incoming weights (layout, window, pretraining size) on every load path:
        ``init_cfg``, mmengine's ``load_from`` and ``--resume``, ``load_state_dict``."""
        older = (local_metadata.get('version') or 1) < self._version
        fit_state_dict(state_dict, self.fit_target(), prefix, convert_layout=older)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)

    def init_weights(self) -> None:
        """Load ``init_cfg=dict(type='Pretrained')``, or initialise randomly.

        Layers: an init_cfg's own rules (mmengine's meaning), or without one as mmdet
        and mmseg do: Linear weights from trunc_normal(std 0.02) with zero bias,
        LayerNorm 1 and 0. The relative position bias tables and the absolute
        embedding are drawn from trunc_normal(std 0.02) in both cases, as the official
        code (microsoft/Swin-Transformer) does: mmdet and mmseg leave the tables at
        zero, and no layer-type init_cfg reaches these bare parameters. The global
        attention layer's last projections are zeroed again, so it starts as the identity.
        """
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            load_pretrained(self, self.init_cfg['checkpoint'],
                            prefix=self.init_cfg.get('prefix'))
            self._is_init = True
            return
        self._init_layers()
        for name, param in self.named_parameters():
            if name.endswith('relative_position_bias_table') or name == 'absolute_pos_embed':
                trunc_normal_(param, std=.02)
        if self.global_attn is not None:
            self.global_attn.zero_init_residuals()
        self._is_init = True

    def _init_layers(self) -> None:
        """An init_cfg's own rules (mmengine's meaning), or without one Linear weights
        from trunc_normal(std 0.02) with zero bias, LayerNorm 1 and 0."""
        if self.init_cfg is not None:
            BaseModule.init_weights(self)
            return
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    # --- forward --------------------------------------------------------------------
    def _check_input(self, images: torch.Tensor, capturing: bool) -> None:
        """Raise on bad input; in a captured graph only the rank is checked (sizes are
        traced values there, and the graph's own ops reject other channel counts)."""
        if images.dim() != 4:
            raise ValueError(f'SwinBackbone expects a 4D (N, C, H, W) tensor, got shape '
                             f'{tuple(images.shape)}')
        if not images.is_floating_point():
            raise ValueError(f'SwinBackbone expects floating-point images (normalised, as '
                             f'the data preprocessor gives them), got {images.dtype}; '
                             f'convert with images.float()')
        if capturing:
            return
        if images.shape[1] != self.in_channels:
            raise ValueError(f'SwinBackbone expects {self.in_channels} input channels, got '
                             f'{images.shape[1]} (shape {tuple(images.shape)})')
        if images.shape[2] < 1 or images.shape[3] < 1:
            raise ValueError(f'SwinBackbone expects a non-empty image, got spatial size '
                             f'{tuple(images.shape[2:])}')

    def _abs_pos_embed(self, hw, capturing: bool) -> torch.Tensor:
        """(1, H, W, C) absolute embedding, bicubically resized from the pretrain grid
        (always resized in a captured graph, where the size is not known; at the
        pretrain size that resize is the identity)."""
        grid = self.absolute_pos_embed.view(1, *self.pos_embed_grid, -1).permute(0, 3, 1, 2)
        if capturing or tuple(hw) != self.pos_embed_grid:
            grid = F.interpolate(grid, size=hw, mode='bicubic', align_corners=False)
        return grid.permute(0, 2, 3, 1)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        # While a graph is captured for export: plain public ops (select_kernels) and a
        # window geometry computed from the traced shape (each stage's StageGeometry),
        # so the graph is right at every input size.
        capturing = capturing_graph(images)
        self._check_input(images, capturing)
        kernels = select_kernels(images.device.type, self.kernels, self.scratch_bytes,
                                 capturing=capturing)
        x = self.patch_embed(images)
        if self.use_abs_pos_embed:
            x = x + self._abs_pos_embed(x.shape[1:3], capturing)
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            out, x = stage(x, kernels)
            if self.global_attn is not None and i == len(self.stages) - 1:
                out = x = self.global_attn(out, kernels)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out).permute(0, 3, 1, 2)
                # contiguous() asks whether H or W is 1, a guard torch.export cannot keep
                # symbolic; an exported graph returns the permuted view as is.
                outs.append(out if capturing else out.contiguous())
        return tuple(outs)


def _check_arguments(embed_dims, depths, num_heads, strides, patch_size, window,
                     out_indices, frozen_stages, in_channels) -> None:
    """Raise ValueError on constructor arguments that cannot describe a Swin model."""
    num_stages = len(depths)
    if num_stages == 0 or len(num_heads) != num_stages:
        raise ValueError(f'depths and num_heads must be non-empty and of equal length, got '
                         f'depths={depths} and num_heads={num_heads}')
    if any(d < 1 for d in depths) or any(h < 1 for h in num_heads):
        raise ValueError(f'depths and num_heads must be positive, got depths={depths}, '
                         f'num_heads={num_heads}')
    for i, heads in enumerate(num_heads):
        dims = embed_dims * 2 ** i
        if dims % heads:
            raise ValueError(f'stage {i} has {dims} channels (embed_dims={embed_dims} * 2^{i}), '
                             f'not divisible by num_heads[{i}]={heads}')
    if len(strides) != num_stages:
        raise ValueError(f'strides must have one entry per stage ({num_stages}), got {strides}')
    if strides[0] != patch_size:
        raise ValueError(f'strides[0] must equal patch_size (non-overlapping patch embedding), '
                         f'got strides[0]={strides[0]} and patch_size={patch_size}')
    if any(s != 2 for s in strides[1:]):
        raise ValueError(f'patch merging supports stride 2 only, got strides={strides}')
    if min(window) < 1:
        raise ValueError(f'window_size must be >= 1, got {window}')
    if in_channels < 1:
        raise ValueError(f'in_channels must be >= 1, got {in_channels}')
    bad = [i for i in out_indices if not 0 <= i < num_stages]
    if bad or not out_indices:
        raise ValueError(f'out_indices must be non-empty and in [0, {num_stages - 1}], got '
                         f'{out_indices}')
    if not -1 <= frozen_stages <= num_stages:
        raise ValueError(f'frozen_stages must be in [-1, {num_stages}], got {frozen_stages}')
    if embed_dims < 1 or patch_size < 1:
        raise ValueError(f'embed_dims and patch_size must be >= 1, got embed_dims='
                         f'{embed_dims}, patch_size={patch_size}')


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_options(pretrain_hw, mlp_ratio, qk_scale, drop_rate, attn_drop_rate,
                   drop_path_rate, scratch_bytes, flags) -> None:
    """Raise on scalar arguments out of range, whether or not this model uses them."""
    if min(pretrain_hw) < 1:
        raise ValueError(f'pretrain_img_size must be positive, got {pretrain_hw}')
    if not _is_number(mlp_ratio) or mlp_ratio <= 0:
        raise ValueError(f'mlp_ratio must be a positive number, got {mlp_ratio!r}')
    if qk_scale is not None and (not _is_number(qk_scale) or qk_scale <= 0):
        raise ValueError(f'qk_scale must be None or a positive number, got {qk_scale!r}')
    for name, rate in (('drop_rate', drop_rate), ('attn_drop_rate', attn_drop_rate),
                       ('drop_path_rate', drop_path_rate)):
        if not _is_number(rate) or not 0 <= rate <= 1:
            raise ValueError(f'{name} must be in [0, 1], got {rate!r}')
    if not isinstance(scratch_bytes, int) or isinstance(scratch_bytes, bool) \
            or scratch_bytes < 1:
        raise ValueError(f'scratch_bytes must be a positive int, got {scratch_bytes!r}')
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            raise TypeError(f'{name} must be a bool, got {flag!r}')
