"""SwinLayerDecayOptimWrapperConstructor: the learning rate and weight decay of every
parameter, from tables written here from the official rules (microsoft/Swin-Transformer
``optimizer.py``: ``get_swin_layer``, the fine-tuning groups' no-decay rules), not read
from the constructor."""
import os

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import swin_mm.optim  # noqa: F401  (registers the constructor)
from helpers import SMALL
from swin_mm import SwinBackbone
from swin_mm.optim import SwinLayerDecayOptimWrapperConstructor, swin_layer_id

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')

# SwinV2-T (depths 2, 2, 6, 2): the layer id of each backbone part, written out.
# Blocks 1..12 in order; each downsample shares its stage's last block's id; output norms
# (norm3 = the official final `norm`) and everything outside the backbone: 13.
SWINV2_T_IDS = {
    'patch_embed': 0,
    'stages.0.blocks.0': 1, 'stages.0.blocks.1': 2, 'stages.0.downsample': 2,
    'stages.1.blocks.0': 3, 'stages.1.blocks.1': 4, 'stages.1.downsample': 4,
    **{f'stages.2.blocks.{j}': 5 + j for j in range(6)}, 'stages.2.downsample': 10,
    'stages.3.blocks.0': 11, 'stages.3.blocks.1': 12,
    'norm0': 13, 'norm1': 13, 'norm2': 13, 'norm3': 13,
}
TOP = 13


def expected_id(name: str) -> int:
    if not name.startswith('backbone.'):
        return TOP  # decode head, auxiliary head
    parts = name.split('.')[1:]
    for length in (4, 3, 1):  # 'stages.i.blocks.j', 'stages.i.downsample', 'norm0' ...
        key = '.'.join(parts[:length])
        if key in SWINV2_T_IDS:
            return SWINV2_T_IDS[key]
    raise AssertionError(f'no expected id for {name}')


def expected_decay(name: str, param: torch.Tensor) -> bool:
    """The official rules: 1-D, biases, absolute_pos_embed, and three keywords."""
    if param.ndim == 1 or name.endswith('.bias') or name.endswith('absolute_pos_embed'):
        return False
    return not any(k in name for k in ('cpb_mlp', 'logit_scale', 'relative_position_bias_table'))


def _groups_by_param(optim_wrapper):
    """{id(parameter): (lr, weight_decay)} from the optimizer's groups (the wrapper's
    param_groups add a placeholder that logs the base rate)."""
    found = {}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            assert id(param) not in found, 'a parameter in two groups'
            found[id(param)] = (group['lr'], group['weight_decay'])
    return found


def test_every_parameter_of_a_swinv2_t_upernet():
    """The UPerNet SwinV2-T config's optimizer (layer decay 0.95, lr 6e-5, wd 0.05),
    built through mmseg's registries on the full-size model."""
    cfg = Config.fromfile(os.path.join(CONFIGS, 'upernet_swinv2_t_ade20k.py'))
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmseg'):
        from mmseg.registry import MODELS
        model = MODELS.build(cfg.model)
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert cfg.optim_wrapper.constructor == 'SwinLayerDecayOptimWrapperConstructor'
    found = _groups_by_param(optim_wrapper)
    named = list(model.named_parameters())
    assert len(found) == len(named) and len(named) > 250
    checked = {'no decay': 0, 'cpb_mlp': 0, 'logit_scale': 0, 'head': 0}
    for name, param in named:
        lr, weight_decay = found[id(param)]
        assert lr == pytest.approx(6e-5 * 0.95 ** (TOP - expected_id(name)), rel=1e-12), name
        assert weight_decay == (0.05 if expected_decay(name, param) else 0.), name
        checked['no decay'] += weight_decay == 0
        checked['cpb_mlp'] += 'cpb_mlp.2.weight' in name and weight_decay == 0  # a 2-D one
        checked['logit_scale'] += name.endswith('logit_scale') and weight_decay == 0
        checked['head'] += not name.startswith('backbone.') and lr == 6e-5
    assert checked['cpb_mlp'] == checked['logit_scale'] == 12  # one per block
    assert checked['head'] > 0 and checked['no decay'] > 100
    lrs = {group['lr'] for group in optim_wrapper.optimizer.param_groups}
    assert min(lrs) == pytest.approx(6e-5 * 0.95 ** 13)  # the patch embedding


class _Detector(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.neck = nn.Conv2d(8, 8, 1)


def test_v1_backbone_with_position_embedding_global_attention_and_backbone_factor():
    """SwinBackbone (V1): absolute_pos_embed with the patch embedding (id 0, no decay),
    relative_position_bias_table without decay, the HTC++ global attention layer at the
    top; backbone_lr_mult multiplies backbone parameters only."""
    backbone = SwinBackbone(**SMALL, use_abs_pos_embed=True, pretrain_img_size=64,
                            global_attn=True)
    model = _Detector(backbone)
    constructor = SwinLayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.1)),
        dict(decay_rate=0.5, backbone_lr_mult=0.1))
    found = _groups_by_param(constructor(model))
    top = sum(SMALL['depths']) + 1  # 9
    expected_ids = {'backbone.absolute_pos_embed': 0,
                    'backbone.stages.1.blocks.1.attn.w_msa.relative_position_bias_table': 4,
                    'backbone.stages.2.downsample.reduction.weight': 6,
                    'backbone.global_attn.attn.qkv.weight': top,
                    'backbone.norm2.weight': top}
    params = dict(model.named_parameters())
    for name, layer in expected_ids.items():
        lr, _ = found[id(params[name])]
        assert lr == pytest.approx(1e-3 * 0.1 * 0.5 ** (top - layer)), name
    for name in ('backbone.absolute_pos_embed',
                 'backbone.stages.1.blocks.1.attn.w_msa.relative_position_bias_table',
                 'backbone.norm2.weight', 'neck.bias'):
        assert found[id(params[name])][1] == 0., name
    assert found[id(params['backbone.global_attn.attn.qkv.weight'])][1] == 0.1
    assert found[id(params['neck.weight'])] == (1e-3, 0.1)


def test_frozen_parameters_are_left_out():
    model = _Detector(SwinBackbone(**SMALL, frozen_stages=1))
    constructor = SwinLayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)), dict(decay_rate=0.9))
    found = _groups_by_param(constructor(model))
    assert len(found) == sum(p.requires_grad for p in model.parameters())
    assert not any(id(p) in found for p in model.backbone.patch_embed.parameters())


def test_errors():
    optim = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
    with pytest.raises(ValueError,
                       match=r"takes decay_rate and backbone_lr_mult, got \['custom_keys'\]"):
        SwinLayerDecayOptimWrapperConstructor(optim, dict(custom_keys={}))
    with pytest.raises(ValueError, match=r'decay_rate must be in \(0, 1\], got 1.5'):
        SwinLayerDecayOptimWrapperConstructor(optim, dict(decay_rate=1.5))
    with pytest.raises(TypeError, match='backbone is a SwinBackbone or SwinV2Backbone, found '
                                        'Linear in _Detector'):
        SwinLayerDecayOptimWrapperConstructor(optim)(_Detector(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match=r"'stages.4.blocks.0.x' is not a parameter of a Swin"):
        swin_layer_id('stages.4.blocks.0.x', (2, 2, 6, 2))
    with pytest.raises(ValueError, match="'stages.0.blocks.2.x' is not"):
        swin_layer_id('stages.0.blocks.2.x', (2, 2, 6, 2))


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', None])
def test_registered_where_configs_look(scope):
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
    registry = OPTIM_WRAPPER_CONSTRUCTORS if scope is None else __import__(
        f'{scope}.registry', fromlist=['x']).OPTIM_WRAPPER_CONSTRUCTORS
    assert registry.get('SwinLayerDecayOptimWrapperConstructor') is \
        SwinLayerDecayOptimWrapperConstructor
