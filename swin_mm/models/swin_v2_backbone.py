"""SwinV2Backbone: Swin Transformer V2 for mmdet 3.x and mmseg 1.x."""
from typing import Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from ..checkpoints.fitting import FitTarget
from ..checkpoints.loading import load_pretrained
from ..checkpoints.v2_layouts import fit_v2_state_dict, to_v2_backbone_state_dict
from ..kernels import prepare_kernels
from ..kernels.custom_functions import DEFAULT_SCRATCH_BYTES
from .patches import PatchEmbed
from .swin_backbone import SwinBackbone, _check_arguments, _check_options, _pair
from .swin_v2_block import INITIAL_LOGIT_SCALE, PatchMergingV2, SwinV2Block


def pretrained_windows(value, num_stages: int) -> Tuple[Tuple[int, int], ...]:
    """One (h, w) pretrained window per stage from an int (every stage, both sides), a
    pair (every stage), or one int or pair per stage; 0 means the stage's window."""
    if isinstance(value, int) and not isinstance(value, bool):
        per_stage = [value] * num_stages
    elif isinstance(value, (list, tuple)) and len(value) == num_stages:
        per_stage = list(value)
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        per_stage = [tuple(value)] * num_stages
    else:
        raise ValueError(f'pretrained_window_size must be an int, a pair of ints or one per '
                         f'stage ({num_stages}), got {value!r}')
    windows = tuple(_pair(v, 'pretrained_window_size') for v in per_stage)
    if any(not isinstance(side, int) or isinstance(side, bool) or side < 0
           for pair in windows for side in pair):
        raise ValueError(f'pretrained_window_size entries must be ints >= 0, got {value!r}')
    return windows


@MODELS.register_module()
class SwinV2Backbone(SwinBackbone):
    """Swin Transformer V2 (Liu et al., CVPR 2022) emitting four normalised NCHW stages.

    The official block (residual post-norm, scaled cosine attention with a per-head logit
    scale clamped at log(100), continuous position bias MLP on log-spaced coordinates
    normalised by the pretrained window, q and v biases with a zero k bias) and the
    official V2 patch merging (reduction, then norm) at the end of stages 0 to n-2. The
    official final ``norm`` is the last output norm; the other output norms are new.

    Any input size: like :class:`SwinBackbone`, maps are padded bottom/right to a window
    multiple before the cyclic shift and the shift mask is computed on the padded grid;
    windows never shrink with the map. **This differs from the official classification
    code at small maps**: where a map is no larger than the window, the official code
    shrinks the window to the map and drops the shift (e.g. stage 3 of a 256 input at
    window 16), which this backbone does not; outputs agree wherever every map of a
    stage is larger than the window. Registered in mmengine's root model registry like
    ``SwinBackbone``. It reuses ``SwinBackbone``'s forward, freezing and input checks;
    its layers, initialisation and checkpoint layouts are its own. Published sizes:
    ``ARCH_ZOO['swinv2']`` (defaults: SwinV2-T).

    Args:
        in_channels (int): channels of the input images. Default: 3.
        embed_dims (int): channels of stage 0; stage i has ``embed_dims * 2**i``.
            Default: 96.
        patch_size (int): side of a patch, in pixels. Default: 4.
        window_size (int | tuple[int, int]): window side(s) in tokens. Default: 8.
        pretrained_window_size (int | tuple | Sequence): window of the pretrained
            weights, which normalises the position-bias coordinates: an int, an (h, w)
            pair, or one int or pair per stage (the official 22K->1K configs use
            ``[12, 12, 12, 6]``); 0 means the stage's own window. Default: 0.
        extra_norm_every_n_blocks (int): a LayerNorm (``norm3``) after every n-th block
            of a stage, as the paper's SwinV2-H and -G (n = 6) and mmpretrain have; 0
            for none, as in the official code and its T/S/B/L checkpoints. Default: 0.
        mlp_ratio (float): MLP hidden channels per token channel. Default: 4.
        depths (Sequence[int]): blocks per stage. Default: (2, 2, 6, 2).
        num_heads (Sequence[int]): attention heads per stage. Default: (3, 6, 12, 24).
        strides (Sequence[int]): downsampling per stage: ``patch_size``, then 2.
            Default: (4, 2, 2, 2).
        out_indices (Sequence[int]): stages whose normalised output is returned.
            Default: (0, 1, 2, 3).
        qkv_bias (bool): learned q and v biases (k has none). Default: True.
        patch_norm (bool): norm after the patch embedding. Default: True.
        drop_rate (float): dropout after the attention projection and in the MLP.
            Default: 0.
        attn_drop_rate (float): dropout on the attention probabilities. Default: 0.
        drop_path_rate (float): stochastic depth, rising linearly from 0 over the blocks
            to this rate. Default: 0.1.
        act_cfg (dict): the MLP's activation. Default: ``dict(type='GELU')``.
        norm_cfg (dict): every norm. Default: ``dict(type='LN')``.
        with_cp (bool): recompute each block in backward to save memory. Default: False.
        frozen_stages (int): stop gradients and keep eval mode in the patch embedding and
            stages ``0 .. frozen_stages - 1`` (and their output norms); -1 freezes
            nothing. Default: -1.
        global_attn (bool | dict): the HTC++ global self-attention layer after the last
            stage, as in ``SwinBackbone``. Default: False.
        kernels (str): ``'auto'`` or ``'reference'``, as in ``SwinBackbone``; the cosine
            attention runs through public SDPA in ``'auto'``. Default: ``'auto'``.
        scratch_bytes (int): chunk budget of the CPU MLP kernel. Default: 8 MiB.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=..., prefix=...)``
            loads any Swin V2 layout (official, timm, mmpretrain, torchvision, this
            plugin's); other mmengine init configs as usual. Default: None.
    """

    # State-dict layout version: 1 = this plugin's V2 names. Every load is checked for
    # the other layouts anyway (swin_mm.checkpoints.v2_layouts tells them apart).
    _version = 1

    def __init__(self,
                 in_channels: int = 3,
                 embed_dims: int = 96,
                 patch_size: int = 4,
                 window_size: Union[int, Tuple[int, int]] = 8,
                 pretrained_window_size: Union[int, Sequence] = 0,
                 extra_norm_every_n_blocks: int = 0,
                 mlp_ratio: float = 4,
                 depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 strides: Sequence[int] = (4, 2, 2, 2),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 qkv_bias: bool = True,
                 patch_norm: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'),
                 with_cp: bool = False,
                 frozen_stages: int = -1,
                 global_attn: Union[bool, dict] = False,
                 kernels: str = 'auto',
                 scratch_bytes: int = DEFAULT_SCRATCH_BYTES,
                 init_cfg: Optional[dict] = None):
        # SwinBackbone's constructor builds V1 layers: only BaseModule's runs here; the
        # attributes SwinBackbone's forward and freezing read are set below.
        BaseModule.__init__(self, init_cfg=init_cfg)
        depths, num_heads, out_indices = tuple(depths), tuple(num_heads), tuple(out_indices)
        window = _pair(window_size, 'window_size')
        _check_arguments(embed_dims, depths, num_heads, strides, patch_size, window,
                         out_indices, frozen_stages, in_channels)
        _check_options(pretrain_hw=(1, 1), mlp_ratio=mlp_ratio, qk_scale=None,
                       drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                       drop_path_rate=drop_path_rate, scratch_bytes=scratch_bytes,
                       flags=dict(qkv_bias=qkv_bias, patch_norm=patch_norm, with_cp=with_cp))
        if (not isinstance(extra_norm_every_n_blocks, int)
                or isinstance(extra_norm_every_n_blocks, bool) or extra_norm_every_n_blocks < 0):
            raise ValueError(f'extra_norm_every_n_blocks must be an int >= 0, got '
                             f'{extra_norm_every_n_blocks!r}')
        if not isinstance(global_attn, (bool, dict)):
            raise TypeError(f'global_attn must be a bool or a dict, got {global_attn!r}')
        num_stages = len(depths)
        pretrained = pretrained_windows(pretrained_window_size, num_stages)
        prepare_kernels(kernels)
        self.in_channels = in_channels
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.use_abs_pos_embed = False
        self.kernels, self.scratch_bytes = kernels, scratch_bytes
        self.num_features = [embed_dims * 2 ** i for i in range(num_stages)]
        self.pretrained_window_size = pretrained

        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size,
                                      norm_cfg if patch_norm else None)
        self.drop_after_pos = nn.Dropout(p=drop_rate)
        self._add_stages(
            depths, window, drop_path_rate, with_cp,
            make_block=lambda i, j, rate: SwinV2Block(
                self.num_features[i], num_heads[i], int(mlp_ratio * self.num_features[i]),
                window, pretrained[i], qkv_bias=qkv_bias, drop_rate=drop_rate,
                attn_drop_rate=attn_drop_rate, drop_path_rate=rate, act_cfg=act_cfg,
                norm_cfg=norm_cfg,
                extra_norm=bool(extra_norm_every_n_blocks)
                and (j + 1) % extra_norm_every_n_blocks == 0),
            make_downsample=lambda i: PatchMergingV2(self.num_features[i], norm_cfg))
        self._add_outputs(global_attn, dict(num_heads=num_heads[-1], mlp_ratio=mlp_ratio,
                                            drop_path_rate=drop_path_rate),
                          qkv_bias, act_cfg, norm_cfg)
        self._freeze_stages()

    # --- weights --------------------------------------------------------------------
    def fit_target(self) -> FitTarget:
        """What loading fits incoming weights to: V2 has no window-sized tables."""
        return FitTarget(self.state_dict(), {})

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        """Convert any V2 layout on every load path (``init_cfg``, ``load_from``,
        ``--resume``, ``load_state_dict``); derived buffers are never read from a file.
        Skips SwinBackbone's V1 hook on purpose."""
        fit_v2_state_dict(state_dict, prefix)
        nn.Module._load_from_state_dict(self, state_dict, prefix, local_metadata,
                                        *args, **kwargs)

    def init_weights(self) -> None:
        """Load ``init_cfg=dict(type='Pretrained')``, or initialise as the official code:
        Linear weights trunc_normal(std 0.02) with zero bias, LayerNorm 1 and 0 (or an
        init_cfg's own rules), then every block's post-norms zeroed (each block starts
        as the identity), logit scales log(10), q and v biases zero."""
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            load_pretrained(self, self.init_cfg['checkpoint'],
                            prefix=self.init_cfg.get('prefix'),
                            to_backbone=to_v2_backbone_state_dict)
            self._is_init = True
            return
        self._init_layers()
        for stage in self.stages:
            for block in stage.blocks:
                for norm in (block.norm1, block.norm2):
                    nn.init.zeros_(norm.weight)
                    nn.init.zeros_(norm.bias)
                attention = block.attn.w_msa
                nn.init.constant_(attention.logit_scale, INITIAL_LOGIT_SCALE)
                if attention.q_bias is not None:
                    nn.init.zeros_(attention.q_bias)
                    nn.init.zeros_(attention.v_bias)
        if self.global_attn is not None:
            self.global_attn.zero_init_residuals()
        self._is_init = True

