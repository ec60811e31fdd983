"""Swin Transformer backbone plugin for OpenMMLab 2.x.

``custom_imports=dict(imports=['swin_mm'])`` registers ``SwinBackbone`` and
``SwinV2Backbone`` in mmengine's
root model registry, which the mmdet, mmseg and mmpretrain registries all fall back to.
"""
from .models import SwinBackbone, SwinV2Backbone

__version__ = '0.1.0'
__all__ = ['SwinBackbone', 'SwinV2Backbone']
