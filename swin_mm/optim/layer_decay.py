"""Layer-wise learning-rate decay for detectors and segmentors on a Swin backbone.

mmseg's ``LearningRateDecayOptimizerConstructor`` knows ConvNeXt and BEiT only; this
constructor knows ``SwinBackbone`` (V1) and ``SwinV2Backbone``. The layer ids are the
Swin authors' (microsoft/SimMIM@0e71746 ``optimizer.py``: ``get_swin_layer``, used by
``build_finetune_optimizer``), the no-weight-decay rules the official V2 code's
(microsoft/Swin-Transformer@f82860b ``optimizer.py`` with the V2 model's
``no_weight_decay`` / ``no_weight_decay_keywords``), in this plugin's parameter names.
With ``L = sum(depths)``:

- ``patch_embed.*``: 0; ``absolute_pos_embed`` (V1 only, off in every recipe): 0 too,
  as ViT's ``pos_embed`` in the same file (``get_swin_layer`` does not name it and so
  puts it at the top);
- ``stages.i.blocks.j.*``: ``sum(depths[:i]) + j + 1``, so 1 .. L in order (official
  ``layers.i.blocks.j.*``);
- ``stages.i.downsample.*``: ``sum(depths[:i + 1])``, its stage's last block (official
  ``layers.i.downsample.*``);
- ``global_attn.*`` (the HTC++ layer, not in the official code) and the output norms
  ``norm0`` .. ``norm3`` (``norm3`` is the official ``norm``): ``L + 1``;
- every parameter outside the backbone (neck, heads): ``L + 1`` (official ``head``).

A parameter of layer ``k`` gets ``lr * decay_rate ** (L + 1 - k)``, so the heads, the
output norms and the global attention layer (new or re-initialised parameters) train
at the base rate and the patch embedding at ``decay_rate ** (L + 1)`` of it; backbone
parameters are further multiplied by ``backbone_lr_mult``. Weight decay is 0 for every
1-D parameter, every ``*.bias``, ``absolute_pos_embed`` and every parameter whose name
contains ``cpb_mlp``, ``logit_scale`` or ``relative_position_bias_table``; the optimizer's
``weight_decay`` for the rest. Parameters that do not require gradients are left out,
as in the official code.
"""
from typing import Dict, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from ..models import SwinBackbone

# The official fine-tuning optimizer's no-decay keywords and names.
NO_DECAY_KEYWORDS = ('cpb_mlp', 'logit_scale', 'relative_position_bias_table')
NO_DECAY_NAMES = ('absolute_pos_embed',)
# Backbone parameters before the stages: layer 0.
_BOTTOM = ('patch_embed', 'absolute_pos_embed')


def swin_layer_id(name: str, depths: Tuple[int, ...]) -> int:
    """Layer id of the backbone parameter ``name`` (relative to the backbone, e.g.
    ``'stages.2.blocks.3.attn.w_msa.qkv.weight'``); the table in the module docstring.

    Raises ValueError for a name that is not a Swin backbone parameter.
    """
    parts = name.split('.')
    top = sum(depths) + 1
    if parts[0] in _BOTTOM:
        return 0
    if parts[0] == 'stages' and len(parts) > 2 and parts[1].isdigit():
        stage = int(parts[1])
        if stage < len(depths):
            if parts[2] == 'downsample':
                return sum(depths[:stage + 1])
            if parts[2] == 'blocks' and len(parts) > 3 and parts[3].isdigit() \
                    and int(parts[3]) < depths[stage]:
                return sum(depths[:stage]) + int(parts[3]) + 1
    elif parts[0] == 'global_attn' or (parts[0].startswith('norm') and parts[0][4:].isdigit()):
        return top
    raise ValueError(f'{name!r} is not a parameter of a Swin backbone with depths '
                     f'{tuple(depths)}: expected patch_embed.*, absolute_pos_embed, '
                     f'stages.<i>.blocks.<j>.*, stages.<i>.downsample.*, global_attn.* or '
                     f'norm<i>.*')


def decays_weight(name: str, param: nn.Parameter) -> bool:
    """Whether ``param`` (full name ``name``) gets weight decay under the official rules."""
    if param.ndim <= 1 or name.endswith('.bias'):
        return False
    if name.split('.')[-1] in NO_DECAY_NAMES:
        return False
    return not any(keyword in name for keyword in NO_DECAY_KEYWORDS)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SwinLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Parameter groups with layer-wise learning-rate decay over a Swin backbone.

    Use with ``optim_wrapper=dict(constructor='SwinLayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=..., weight_decay=...), paramwise_cfg=dict(
    decay_rate=0.95))``. The model must have a ``backbone`` that is a ``SwinBackbone``
    or ``SwinV2Backbone`` (or a subclass); layer ids, learning-rate scales and weight
    decay are in the module docstring. One parameter group per (layer, learning-rate
    scale, decay or not).

    Args:
        optim_wrapper_cfg (dict): the ``optim_wrapper`` config (``type``, ``optimizer``,
            ...), as for mmengine's ``DefaultOptimWrapperConstructor``.
        paramwise_cfg (dict, optional): ``decay_rate`` (float in (0, 1], default 1:
            no layer decay) and ``backbone_lr_mult`` (float > 0, default 1: a factor on
            every backbone parameter's rate, e.g. 0.1 for the Swin V2 HTC++ recipe).
            No other keys. Default: None (both 1).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        options = dict(paramwise_cfg or {})
        unknown = sorted(set(options) - {'decay_rate', 'backbone_lr_mult'})
        if unknown:
            raise ValueError(f'SwinLayerDecayOptimWrapperConstructor: paramwise_cfg takes '
                             f'decay_rate and backbone_lr_mult, got {unknown}')
        self.decay_rate = float(options.get('decay_rate', 1.0))
        self.backbone_lr_mult = float(options.get('backbone_lr_mult', 1.0))
        if not 0 < self.decay_rate <= 1:
            raise ValueError(f'decay_rate must be in (0, 1], got {self.decay_rate}')
        if not self.backbone_lr_mult > 0:
            raise ValueError(f'backbone_lr_mult must be > 0, got {self.backbone_lr_mult}')
        # Non-empty, so the base class's __call__ asks add_params for the groups.
        super().__init__(optim_wrapper_cfg, dict(decay_rate=self.decay_rate,
                                                 backbone_lr_mult=self.backbone_lr_mult))

    def lr_scale_and_decay(self, model: nn.Module) -> Dict[str, Tuple[int, float, bool]]:
        """{parameter name: (layer id, learning-rate scale, weight decay or not)} for
        every parameter of ``model`` that requires a gradient."""
        backbone = getattr(model, 'backbone', None)
        if not isinstance(backbone, SwinBackbone):
            raise TypeError(f'SwinLayerDecayOptimWrapperConstructor needs a model whose '
                            f'backbone is a SwinBackbone or SwinV2Backbone, found '
                            f'{type(backbone).__name__} in {type(model).__name__}')
        depths = tuple(len(stage.blocks) for stage in backbone.stages)
        top = sum(depths) + 1
        table = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            if name.startswith('backbone.'):
                layer = swin_layer_id(name[len('backbone.'):], depths)
                scale = self.backbone_lr_mult * self.decay_rate ** (top - layer)
            else:
                layer, scale = top, 1.0
            table[name] = (layer, scale, decays_weight(name, param))
        return table

    def add_params(self, params: List[dict], module: nn.Module, *args, **kwargs) -> None:
        """Append one group per (layer id, learning-rate scale, weight decay or not)
        to ``params``."""
        base_lr = self.optimizer_cfg['lr']
        weight_decay = self.optimizer_cfg.get('weight_decay', 0.)
        named = dict(module.named_parameters())
        groups: Dict[Tuple[int, float, bool], dict] = {}
        for name, (layer, scale, decay) in self.lr_scale_and_decay(module).items():
            group = groups.setdefault((layer, scale, decay), dict(
                params=[], lr=base_lr * scale, weight_decay=weight_decay if decay else 0.))
            group['params'].append(named[name])
        params.extend(groups[key] for key in sorted(groups))
        print_log(f'SwinLayerDecayOptimWrapperConstructor: {len(groups)} parameter groups, '
                  f'decay_rate {self.decay_rate}, backbone_lr_mult {self.backbone_lr_mult}',
                  logger='current')
