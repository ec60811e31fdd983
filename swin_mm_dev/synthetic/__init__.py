"""Small deterministic datasets in the real ADE20K and COCO on-disk formats.

Tests and the demo generate their data with these instead of downloading anything.
"""
from .ade20k import write_ade20k
from .coco import write_coco

__all__ = ['write_ade20k', 'write_coco']
