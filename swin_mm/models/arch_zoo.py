"""Published architecture settings, by model variant and size: the one table of them.

``ARCH_ZOO[variant][size]`` holds the constructor arguments that define a size
(``embed_dims``, ``depths``, ``num_heads``, and V2's ``extra_norm_every_n_blocks``
for H and G); everything else keeps the backbone's
defaults (window 7, patch 4, MLP ratio 4) unless a recipe says otherwise. Swin V1
sizes are from the paper (Liu et al., ICCV 2021, section 3.3) and the official configs;
another variant joins as its own entry (e.g. ``'swinv2'``), with its own sizes.
"""
from typing import Dict

ARCH_ZOO: Dict[str, Dict[str, dict]] = {
    'swin': {
        'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
        'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
        'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
        'large': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
    },
    # Swin V2 (SwinV2Backbone): the four sizes of the official V2 configs
    # (configs/swinv2/*.yaml), and H and G of the paper (section 3.6) with mmpretrain's
    # settings: an extra norm every 6 blocks, which the official code lacks (no official
    # H or G checkpoint was released; H's head count is mmpretrain's guess).
    'swinv2': {
        'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
        'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
        'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
        'large': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
        'huge': dict(embed_dims=352, depths=(2, 2, 18, 2), num_heads=(8, 16, 32, 64),
                     extra_norm_every_n_blocks=6),
        'giant': dict(embed_dims=512, depths=(2, 2, 42, 4), num_heads=(16, 32, 64, 128),
                      extra_norm_every_n_blocks=6),
    },
}
# Short names, as in the paper's Swin-T/S/B/L and the config names.
ARCH_ALIASES = {'t': 'tiny', 's': 'small', 'b': 'base', 'l': 'large', 'h': 'huge',
                'g': 'giant'}


def arch_settings(arch: str, variant: str = 'swin') -> dict:
    """The size-defining constructor arguments of `arch` ('tiny' or 'T', ...) of `variant`."""
    sizes = ARCH_ZOO.get(variant)
    if sizes is None:
        raise ValueError(f'variant must be one of {sorted(ARCH_ZOO)}, got {variant!r}')
    name = ARCH_ALIASES.get(arch.lower(), arch.lower())
    if name not in sizes:
        raise ValueError(f'arch must be one of {sorted(sizes)} (or {sorted(ARCH_ALIASES)}), '
                         f'got {arch!r}')
    return dict(sizes[name])
