"""The registered backbones and their layers.

- :mod:`.swin_backbone`: ``SwinBackbone`` (Swin V1), registered in mmengine's MODELS;
- :mod:`.swin_block`: its block (window attention with a bias table, GELU MLP);
- :mod:`.swin_v2_backbone`: ``SwinV2Backbone`` (Swin V2), registered the same way;
- :mod:`.swin_v2_block`: its block (post-norm, cosine attention, continuous position
  bias) and V2 patch merging;
- :mod:`.patches`: patch embedding and V1 patch merging;
- :mod:`.stage`: a stage of any variant's blocks, which picks the window geometry;
- :mod:`.global_attention`: the HTC++ global self-attention layer;
- :mod:`.arch_zoo`: the published sizes (tiny/small/base/large) of each variant.
"""
from .arch_zoo import ARCH_ZOO, arch_settings
from .swin_backbone import SwinBackbone
from .swin_v2_backbone import SwinV2Backbone

__all__ = ['ARCH_ZOO', 'SwinBackbone', 'SwinV2Backbone', 'arch_settings']
