"""Build SwinV2Backbone and its peers (mmpretrain's and timm's SwinTransformerV2) with
identical random weights.

mmpretrain's model draws the weights (post-norms perturbed so that no block is the
identity); ours loads its state dict through the load hook (mmpretrain layout); timm's
receives the same tensors under the names this plugin's own timm-layout converter maps
to them (a converted tensor is the very object it was renamed from, so the names pair
up by identity). Its output norms 0-3 get ours.
"""
from typing import Dict, Tuple

import torch

from swin_mm import SwinV2Backbone
from swin_mm.checkpoints.v2_layouts import convert_v2_state_dict
from swin_mm.models import arch_settings
from .models import TimmSwin

IMPLEMENTATIONS_V2 = ('swin_mm', 'mmpretrain', 'timm')


def _mmpretrain(arch: str, window: int, seed: int) -> torch.nn.Module:
    from mmpretrain.models.backbones import SwinTransformerV2
    torch.manual_seed(seed)
    peer = SwinTransformerV2(arch=arch, img_size=256, window_size=window, drop_path_rate=0.,
                             out_indices=(0, 1, 2, 3), pad_small_map=True)
    with torch.no_grad():
        for name, param in peer.named_parameters():
            if 'norm' in name:
                param.add_(0.1 * torch.randn_like(param))
    return peer


def _timm_names(timm_swin: torch.nn.Module) -> Dict[str, str]:
    """{our key: timm key} for every timm backbone tensor, from our converter."""
    state = timm_swin.state_dict()
    by_identity = {id(tensor): key for key, tensor in state.items()}
    converted = convert_v2_state_dict(state, layout='timm', prefix='').backbone
    return {ours: by_identity[id(tensor)] for ours, tensor in converted.items()}


def _timm(ours: SwinV2Backbone, window: int, img_size: Tuple[int, int]) -> TimmSwin:
    """timm's V2 for one input size (its windows are fixed at construction; never
    shrunk here: ``always_partition``) with the weights of `ours`."""
    from timm.models.swin_transformer_v2 import SwinTransformerV2
    dims = ours.num_features[0]
    swin = SwinTransformerV2(img_size=img_size, window_size=window, embed_dim=dims,
                             depths=tuple(len(stage.blocks) for stage in ours.stages),
                             num_heads=tuple(stage.blocks[0].attn.w_msa.num_heads
                                             for stage in ours.stages),
                             num_classes=0, drop_path_rate=0., always_partition=True)
    model = TimmSwin(swin, dims)
    ours_state = ours.state_dict()
    names = _timm_names(swin)
    swin.load_state_dict({timm: ours_state[key] for key, timm in names.items()})
    model.norms.load_state_dict({f'{i}.{name}': ours_state[f'norm{i}.{name}']
                                 for i in range(4) for name in ('weight', 'bias')})
    return model


def build_v2(impls=IMPLEMENTATIONS_V2, arch: str = 'tiny', window: int = 8, seed: int = 0,
             img_size: Tuple[int, int] = (256, 256)) -> Dict[str, torch.nn.Module]:
    """{impl: model} for `impls`, each with the weights every implementation gets for
    this seed, each built once (and only what they need: timm's weights come from ours,
    ours from mmpretrain's); `img_size` is used by timm only (its models are built for
    one input size)."""
    unknown = sorted(set(impls) - set(IMPLEMENTATIONS_V2))
    if unknown:
        raise ValueError(f'impls must be among {IMPLEMENTATIONS_V2}, got {unknown}')
    models = {'mmpretrain': _mmpretrain(arch, window, seed)}
    if {'swin_mm', 'timm'} & set(impls):
        models['swin_mm'] = SwinV2Backbone(**arch_settings(arch, 'swinv2'),
                                           window_size=window, drop_path_rate=0.)
        models['swin_mm'].load_state_dict(models['mmpretrain'].state_dict())
    if 'timm' in impls:
        models['timm'] = _timm(models['swin_mm'], window, img_size)
    return {impl: models[impl] for impl in impls}
