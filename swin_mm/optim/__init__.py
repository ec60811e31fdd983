"""Optimizer constructors for recipes on Swin backbones (layer-wise learning-rate decay).

Not imported by ``import swin_mm`` (models never need it): configs that use it import it
through ``custom_imports=dict(imports=['swin_mm', 'swin_mm.optim'])``. It registers
``SwinLayerDecayOptimWrapperConstructor`` in mmengine's root registry, which mmdet's and
mmseg's fall back to, and in mmdet's and mmseg's own registries where they are installed.
"""
import importlib.util

from .layer_decay import (NO_DECAY_KEYWORDS, NO_DECAY_NAMES,
                          SwinLayerDecayOptimWrapperConstructor, decays_weight, swin_layer_id)

for _package in ('mmdet', 'mmseg'):
    if importlib.util.find_spec(_package) is not None:
        _registry = importlib.import_module(f'{_package}.registry').OPTIM_WRAPPER_CONSTRUCTORS
        _registry.register_module(module=SwinLayerDecayOptimWrapperConstructor)

__all__ = ['NO_DECAY_KEYWORDS', 'NO_DECAY_NAMES', 'SwinLayerDecayOptimWrapperConstructor',
           'decays_weight', 'swin_layer_id']
