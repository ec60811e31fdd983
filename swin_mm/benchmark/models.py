"""Build SwinBackbone and mmdet's SwinTransformer with identical random weights."""
from typing import Dict, Sequence, Tuple

import torch

ARCHS: Dict[str, dict] = {
    'T': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    'S': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    'B': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    'L': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}
IMPLEMENTATIONS = ('ours', 'mmdet')


def arch_kwargs(arch: str, depths: Sequence[int] = None) -> dict:
    """Constructor arguments of a named architecture; `depths` shrinks it for smoke runs."""
    if arch not in ARCHS:
        raise ValueError(f'arch must be one of {sorted(ARCHS)}, got {arch!r}')
    kwargs = dict(ARCHS[arch], drop_path_rate=0.0)
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


def build(impl: str, kwargs: dict, with_cp: bool = False, seed: int = 0) -> torch.nn.Module:
    """One implementation with the weights every implementation gets for this seed."""
    from mmdet.models.backbones import SwinTransformer
    from swin_mm import SwinBackbone
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f'impl must be one of {IMPLEMENTATIONS}, got {impl!r}')
    reference = SwinTransformer(**kwargs)
    weights = _random_weights(reference, seed)
    model = reference if impl == 'mmdet' else SwinBackbone(**kwargs, with_cp=with_cp)
    model.load_state_dict(weights, strict=True)
    return model


def parse_size(text: str) -> Tuple[int, int]:
    """'800x1344' -> (800, 1344) (height x width)."""
    try:
        height, width = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'expected a size like 512x512 (HxW), got {text!r}') from None
    if height < 1 or width < 1:
        raise ValueError(f'expected a positive size, got {text!r}')
    return height, width
