"""Test-time augmentation for mmdet 3.x instance segmentation (needs mmdet).

Not imported by ``import swin_mm``: configs that test with ``--tta`` import it through
``custom_imports=dict(imports=['swin_mm', 'swin_mm.tta'])``, which registers
``InstanceSegTTAModel`` in mmdet's model registry.
"""
from .instance_seg import InstanceSegTTAModel

__all__ = ['InstanceSegTTAModel']
