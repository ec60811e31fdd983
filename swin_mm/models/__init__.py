from .swin_backbone import SwinBackbone

__all__ = ['SwinBackbone']
