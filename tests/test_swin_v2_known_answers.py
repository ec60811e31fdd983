"""SwinV2Backbone against the official Swin V2 code's known answers
(tests/swinv2_known_answers: official outputs with small random weights, and the same
weights in the official, timm, mmpretrain and torchvision layouts).

Each layout file goes through the layout detection and conversion, raw through
``init_cfg=dict(type='Pretrained')`` and converted through ``load_state_dict``, into a
model built with the run's window and pretrained windows; its stage features (the last
block of each stage, before the output norm) and its last output norm (the official
final ``norm``) must equal the official ones within 1e-4 (float32) at every stage the
official code leaves unclipped (meta.json; the official code shrinks windows at small
maps, this backbone never does).
"""
import json
from pathlib import Path

import pytest
import torch

from swin_mm import SwinV2Backbone
from swin_mm.checkpoints.layouts import unwrap
from swin_mm.checkpoints.v2_layouts import convert_v2_state_dict, detect_v2_layout

ANSWERS = Path(__file__).parent / 'swinv2_known_answers'
META = json.loads((ANSWERS / 'meta.json').read_text())
OUTPUTS = torch.load(ANSWERS / 'official_outputs.pt', map_location='cpu', weights_only=True)
LAYOUT_FILES = {'official': 'official_layout.pth', 'timm': 'timm_layout.pth',
                'mmpretrain': 'mmpretrain_layout.pth', 'torchvision': 'torchvision_layout.pth'}
ARCH = dict(embed_dims=4, depths=(2, 2, 4, 2), num_heads=(2, 2, 4, 8), mlp_ratio=4,
            qkv_bias=True, patch_size=4, drop_path_rate=0.)
TOLERANCE = {'float32': 1e-4, 'float64': 1e-6}


def known_input(size: int, dtype=torch.float32) -> torch.Tensor:
    """The recipe's input, checked against its checksum."""
    x = torch.randn((1, 3, size, size), generator=torch.Generator().manual_seed(size))
    expected = META['input']['checksums'][str(size)]
    assert x.double().sum().item() == pytest.approx(expected['sum'], abs=1e-6)
    return x.to(dtype)


def layout_checkpoint(layout: str):
    return torch.load(ANSWERS / LAYOUT_FILES[layout], map_location='cpu', weights_only=True)


def build(run: dict, **kwargs) -> SwinV2Backbone:
    return SwinV2Backbone(window_size=run['window'],
                          pretrained_window_size=run['pretrained_window_sizes'],
                          **ARCH, **kwargs)


def stage_features(model: SwinV2Backbone, x: torch.Tensor) -> dict:
    """{'stage0'..'stage3' (pre-norm, NCHW), 'norm3'} of one forward."""
    features = {}
    hooks = [stage.blocks[-1].register_forward_hook(
        lambda module, args, out, i=i: features.__setitem__(f'stage{i}', out.permute(0, 3, 1, 2)))
        for i, stage in enumerate(model.stages)]
    with torch.no_grad():
        outs = model.eval()(x)
    for hook in hooks:
        hook.remove()
    features['norm3'] = outs[-1]  # out_indices end with 3
    return features


def comparable(run: dict):
    """The stored outputs of `run` at stages the official code leaves unclipped."""
    unclipped = run['official_stage_unclipped']
    names = [f'stage{i}' for i in range(4) if unclipped[i]] + (['norm3'] if unclipped[3] else [])
    return [name for name in names if name in run['stored']]


def assert_matches_official(model, run_name: str):
    run = META['runs'][run_name]
    dtype = getattr(torch, run['dtype'])
    features = stage_features(model.to(dtype), known_input(run['img'], dtype))
    names = comparable(run)
    assert names, run_name
    for name in names:
        expected = OUTPUTS[run_name][name]
        assert features[name].shape == expected.shape, name
        diff = (features[name] - expected).abs().max().item()
        assert diff <= TOLERANCE[run['dtype']], f'{run_name} {name}: max abs diff {diff:.3g}'


@pytest.mark.parametrize('layout', sorted(LAYOUT_FILES))
def test_each_layout_is_detected(layout):
    checkpoint = layout_checkpoint(layout)
    conversion = convert_v2_state_dict(unwrap(checkpoint))
    assert conversion.layout == layout
    assert detect_v2_layout(conversion.backbone) == 'swin_mm'


@pytest.mark.parametrize('layout', sorted(LAYOUT_FILES))
def test_layouts_convert_to_the_same_weights(layout):
    """Every layout gives the official file's parameters, key for key, bit for bit."""
    reference = convert_v2_state_dict(unwrap(layout_checkpoint('official'))).backbone
    converted = convert_v2_state_dict(unwrap(layout_checkpoint(layout))).backbone
    assert sorted(converted) == sorted(reference)
    for key, value in reference.items():
        assert torch.equal(converted[key], value), key


@pytest.mark.parametrize('layout', sorted(LAYOUT_FILES))
def test_raw_file_through_init_cfg_into_a_window_16_model(layout, tmp_path):
    """The done criterion: a window-8 file, raw, in each layout, through init_cfg into a
    window-16 model with pretrained_window_size=8."""
    path = tmp_path / LAYOUT_FILES[layout]
    torch.save(layout_checkpoint(layout), path)
    run_name = 'w16_pw8_img512'
    model = build(META['runs'][run_name], init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert_matches_official(model, run_name)


# Every other run once, each layout at least once (the layouts convert to the same
# tensors bit for bit: test_layouts_convert_to_the_same_weights).
@pytest.mark.parametrize('run_name, layout', [
    ('w8_img128', 'official'), ('w8_img256', 'timm'), ('w8_img512', 'mmpretrain'),
    ('w8_pw4-6-10-12_img512', 'torchvision'), ('w16_pw12-12-12-6_img256', 'official'),
    ('w8_img256_f64', 'timm')])
def test_converted_state_dict_gives_official_features(layout, run_name):
    model = build(META['runs'][run_name])
    checkpoint = layout_checkpoint(layout)
    backbone = convert_v2_state_dict(unwrap(checkpoint)).backbone
    missing, unexpected = model.load_state_dict(backbone, strict=False)
    assert not unexpected
    assert sorted(missing) == [f'norm{i}.{k}' for i in range(3) for k in ('bias', 'weight')]
    assert_matches_official(model, run_name)


def test_raw_layout_through_load_state_dict_hook():
    """The load hook converts a raw official dict (buffers and all) by itself."""
    run_name = 'w8_img128'
    model = build(META['runs'][run_name])
    state = unwrap(layout_checkpoint('official'))
    before = {k: v.clone() for k, v in state.items()}
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys
    assert all(torch.equal(state[k], before[k]) for k in before) and state.keys() == before.keys()
    assert_matches_official(model, run_name)


def test_a_v1_checkpoint_is_refused_in_one_line():
    from swin_mm.checkpoints import CheckpointError
    v1 = {'layers.0.blocks.0.attn.relative_position_bias_table': torch.zeros(225, 2)}
    with pytest.raises(CheckpointError, match='found Swin v1 .*load it into SwinBackbone'):
        SwinV2Backbone(window_size=4, **ARCH).load_state_dict(v1, strict=False)
