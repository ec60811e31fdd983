"""Build SwinBackbone and its peers (mmdet's and timm's Swin) with identical random weights.

The weights are drawn in timm's layout and converted with this plugin's own converter
(tested exact against timm elsewhere), so every implementation starts from one tensor set.
"""
from typing import Dict, Sequence, Tuple

import torch

from swin_mm.checkpoints.layouts import convert_state_dict
from swin_mm.models import arch_settings
from swin_mm.models.arch_zoo import ARCH_ALIASES, ARCH_ZOO

# The paper's short names of swin_mm.models.ARCH_ZOO's sizes (Swin-T/S/B/L).
ARCHS = sorted(alias.upper() for alias, size in ARCH_ALIASES.items()
               if size in ARCH_ZOO['swin'])
IMPLEMENTATIONS = ('ours', 'mmdet', 'timm')


def arch_kwargs(arch: str, depths: Sequence[int] = None) -> dict:
    """Constructor arguments of a named architecture; `depths` shrinks it for smoke runs."""
    kwargs = dict(arch_settings(arch), drop_path_rate=0.0)
    if depths is not None:
        if len(depths) != 4 or min(depths) < 1:
            raise ValueError(f'depths must be four positive ints, got {tuple(depths)}')
        kwargs['depths'] = tuple(depths)
    return kwargs


def _random_weights(module: torch.nn.Module, seed: int) -> Dict[str, torch.Tensor]:
    """A state dict of random values (not the zero/one init that could hide a mismatch)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in module.state_dict().items():
        if name.endswith('relative_position_index'):
            state[name] = tensor
        elif 'norm' in name and name.endswith('weight'):
            state[name] = 1 + 0.02 * torch.randn(tensor.shape, generator=gen)
        else:
            state[name] = 0.02 * torch.randn(tensor.shape, generator=gen)
    return state


def _timm_swin(kwargs: dict, img_size: Tuple[int, int]) -> torch.nn.Module:
    """timm's Swin for one input size, as timm intends: it fixes each stage's window
    and shift at construction (no shift where a map fits one window, like the official
    classification code; mmdet always shifts), so outputs agree with mmdet's only where
    every stage map is a window multiple larger than the window (e.g. 448x448)."""
    from timm.models.swin_transformer import SwinTransformer
    height, width = img_size
    if height % 4 or width % 4 or min(height, width) < 32 * 7:
        raise ValueError(f"timm's Swin takes sides divisible by 4 and at least 224 (smaller "
                         f'stages shrink its windows and tables), got {height}x{width}')
    return SwinTransformer(img_size=img_size, embed_dim=kwargs['embed_dims'],
                           depths=kwargs['depths'], num_heads=kwargs['num_heads'],
                           num_classes=0, drop_path_rate=kwargs['drop_path_rate'])


class TimmSwin(torch.nn.Module):
    """A timm Swin (V1 or V2) plus the per-stage output LayerNorms (norm0..3) the
    OpenMMLab backbones have, so its four NCHW maps mean the same as theirs.

    Args:
        swin (nn.Module): timm's ``SwinTransformer`` or ``SwinTransformerV2``.
        embed_dims (int): channels of its first stage.
    """

    def __init__(self, swin: torch.nn.Module, embed_dims: int):
        super().__init__()
        self.swin = swin
        self.norms = torch.nn.ModuleList(
            torch.nn.LayerNorm(embed_dims * 2 ** i) for i in range(4))

    def forward(self, images: torch.Tensor):
        stages = self.swin.forward_intermediates(images, intermediates_only=True)
        return [norm(stage.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()
                for norm, stage in zip(self.norms, stages)]


def _weights(kwargs: dict, seed: int):
    """(timm-layout, mmdet-layout) state dicts holding the same random values."""
    timm_weights = _random_weights(_timm_swin(kwargs, (224, 224)), seed)
    mmdet_weights = convert_state_dict(timm_weights, layout='timm').backbone
    gen = torch.Generator().manual_seed(seed + 1)
    for i in range(3):  # timm has no output norms for stages 0-2 (norm3 is its final norm)
        channels = kwargs['embed_dims'] * 2 ** i
        mmdet_weights[f'norm{i}.weight'] = 1 + 0.02 * torch.randn(channels, generator=gen)
        mmdet_weights[f'norm{i}.bias'] = 0.02 * torch.randn(channels, generator=gen)
    return timm_weights, mmdet_weights


def build(impl: str, kwargs: dict, with_cp: bool = False, seed: int = 0,
          img_size: Tuple[int, int] = (224, 224)) -> torch.nn.Module:
    """One implementation with the weights every implementation gets for this seed;
    `img_size` is used by timm only (its models are built for one input size)."""
    from mmdet.models.backbones import SwinTransformer
    from swin_mm import SwinBackbone
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f'impl must be one of {IMPLEMENTATIONS}, got {impl!r}')
    timm_weights, mmdet_weights = _weights(kwargs, seed)
    if impl == 'timm':
        model = TimmSwin(_timm_swin(kwargs, img_size), kwargs['embed_dims'])
        model.swin.load_state_dict(timm_weights, strict=True)
        model.norms.load_state_dict({f'{i}.{name}': mmdet_weights[f'norm{i}.{name}']
                                     for i in range(4) for name in ('weight', 'bias')})
        return model
    model = SwinTransformer(**kwargs) if impl == 'mmdet' else SwinBackbone(**kwargs,
                                                                           with_cp=with_cp)
    model.load_state_dict(mmdet_weights, strict=True)
    return model


# Benchmark precisions: float32, or bfloat16 autocast (mixed precision, as trained).
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16}


def parse_size(text: str) -> Tuple[int, int]:
    """'800x1344' -> (800, 1344) (height x width)."""
    try:
        height, width = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'expected a size like 512x512 (HxW), got {text!r}') from None
    if height < 1 or width < 1:
        raise ValueError(f'expected a positive size, got {text!r}')
    return height, width
