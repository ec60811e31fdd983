"""The registered backbones and their layers.

- :mod:`.swin_backbone`: ``SwinBackbone`` (Swin V1), registered in mmengine's MODELS;
- :mod:`.swin_block`: its block (window attention with a bias table, GELU MLP);
- :mod:`.patches`: patch embedding and V1 patch merging;
- :mod:`.stage`: a stage of any variant's blocks, which picks the window geometry;
- :mod:`.global_attention`: the HTC++ global self-attention layer;
- :mod:`.arch_zoo`: the published sizes (tiny/small/base/large).
"""
from .arch_zoo import ARCH_ZOO, arch_settings
from .swin_backbone import SwinBackbone

__all__ = ['ARCH_ZOO', 'SwinBackbone', 'arch_settings']
