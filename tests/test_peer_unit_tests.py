"""The peers' own Swin unit tests, re-written for SwinBackbone from what they check.

Sources (read, not copied): mmdet v3.3.0 and mmseg v1.2.2
``tests/test_models/test_backbones/test_swin.py``, mmpretrain v1.2.0
``tests/test_models/test_backbones/test_swin_transformer.py``.

Adapted only where the API differs on purpose:
- bad arguments raise a one-line ValueError, not an AssertionError;
- mmpretrain's ``arch`` strings become their (embed_dims, depths, num_heads);
- mmpretrain's ``frozen_stages=k`` is mmdet's ``frozen_stages=k + 1`` (mmdet counts
  the patch embedding as stage 0; SwinBackbone follows mmdet);
- a map smaller than the window is padded, as mmdet does (mmpretrain's
  ``pad_small_map=True``), instead of refused;
- ``with_cp`` lives on the stage (SwinStage), not on each block;
- mmpretrain's ``norm_eval`` does not exist in mmdet/mmseg nor here: not ported.

Speed: everything that computes runs at a slim width (16 channels); shapes at the peers'
widths are checked on the meta device (no arithmetic, but ~1 ms of Python per op, so
few of them).
"""
import math

import pytest
import torch
from mmengine.runner import load_checkpoint
from timm.layers import resample_abs_pos_embed

from helpers import images
from swin_mm import SwinBackbone
from swin_mm.kernels import select_kernels
from swin_mm.models import ARCH_ZOO, arch_settings
from swin_mm.models.stage import SwinStage
from swin_mm.models.swin_block import SwinBlock

SLIM = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))


def test_arch_zoo_is_mmpretrains():
    """Our published sizes against mmpretrain's ``SwinTransformer.arch_zoo``."""
    from mmpretrain.models.backbones import SwinTransformer
    for name, ours in ARCH_ZOO['swin'].items():
        theirs = SwinTransformer.arch_zoo[name]
        assert ours == {k: tuple(v) if isinstance(v, list) else v
                        for k, v in theirs.items()}
        assert arch_settings(name[0].upper()) == ours


def output_shapes(model, height, width):
    """Output shapes of `model` built and run on the meta device: shapes, no arithmetic."""
    with torch.device('meta'):
        return [tuple(out.shape) for out in model(torch.empty(1, 3, height, width))]


def on_meta(**kwargs) -> SwinBackbone:
    with torch.device('meta'):
        return SwinBackbone(**kwargs)


# --- mmdet v3.3.0 test_swin.py: test_swin_block ------------------------------------
def test_mmdet_swin_block_structure_and_token_shape():
    block = SwinBlock(embed_dims=64, num_heads=4, hidden_dims=256, window=(7, 7))
    assert block.ffn.layers[0][0].in_features == 64
    assert block.attn.w_msa.num_heads == 4
    assert block.ffn.layers[0][0].out_features == 256
    x = torch.randn(1, 56, 56, 64)
    kernels = select_kernels('cpu')
    stage = SwinStage([block], (7, 7))
    with torch.no_grad():
        assert stage(x, kernels)[0].shape == (1, 56, 56, 64)


def test_mmdet_swin_block_with_checkpoint_forward():
    stage = SwinStage([SwinBlock(64, 4, 256, (7, 7)) for _ in range(2)], (7, 7),
                      with_cp=True)
    assert stage.with_cp
    x = torch.randn(1, 28, 28, 64, requires_grad=True)  # mmdet: 56x56; smaller for speed
    out, _ = stage(x, select_kernels('cpu'))
    assert out.shape == (1, 28, 28, 64)
    out.sum().backward()  # through torch.utils.checkpoint's recomputation
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()


# --- mmdet v3.3.0 and mmseg v1.2.2 test_swin.py: test_swin_transformer -------------
def test_pretrained_must_be_a_str_or_none():
    with pytest.raises(TypeError, match='pretrained must be a str or None'):
        SwinBackbone(pretrained=123)


def test_pretrained_and_init_cfg_are_exclusive():
    with pytest.raises(ValueError, match='init_cfg and pretrained'):
        SwinBackbone(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth'))


def test_patch_embedding_stride_must_equal_the_patch_size():
    with pytest.raises(ValueError, match='strides\\[0\\] must equal patch_size'):
        SwinBackbone(strides=(2, 2, 2, 2), patch_size=4)


def test_pretrain_img_size_of_three_numbers_is_refused():
    with pytest.raises(ValueError, match='pretrain_img_size'):
        SwinBackbone(pretrain_img_size=(224, 224, 224))


def test_mmseg_pretrain_img_size_of_one_number_is_square():
    model = SwinBackbone(pretrain_img_size=(224,), use_abs_pos_embed=True, **SLIM)
    assert model.absolute_pos_embed.shape == (1, 56 * 56, 16)


def test_absolute_position_embedding_initialises_and_runs():
    model = SwinBackbone(pretrain_img_size=224, use_abs_pos_embed=True, **SLIM)
    model.init_weights()
    with torch.no_grad():
        outs = model(images(1, 224, 224))
    assert [o.shape for o in outs] == [(1, 16 * 2 ** i, 56 >> i, 56 >> i) for i in range(4)]


def test_without_patch_norm_runs():
    model = SwinBackbone(patch_norm=False, **SLIM)
    assert model.patch_embed.norm is None
    with torch.no_grad():
        assert model(images(1, 224, 224))[-1].shape == (1, 128, 7, 7)


@pytest.mark.parametrize('size,spatial', [
    ((512, 512), [(128, 128), (64, 64), (32, 32), (16, 16)]),
    ((511, 511), [(128, 128), (64, 64), (32, 32), (16, 16)]),
    ((112, 137), [(28, 35), (14, 18), (7, 9), (4, 5)]),
])
def test_output_shapes_for_normal_and_abnormal_sizes(size, spatial):
    with torch.no_grad():
        outs = SwinBackbone(**SLIM).eval()(images(1, *size))
    assert [tuple(o.shape) for o in outs] == [
        (1, 16 * 2 ** i, *hw) for i, hw in enumerate(spatial)]


def test_output_shapes_at_the_default_width():
    assert output_shapes(on_meta(), 112, 137) == [
        (1, 96, 28, 35), (1, 192, 14, 18), (1, 384, 7, 9), (1, 768, 4, 5)]


def test_mmdet_frozen_stages_4_freezes_every_parameter():
    model = SwinBackbone(frozen_stages=4, **SLIM)
    model.train()
    assert not any(p.requires_grad for p in model.parameters())


# --- mmpretrain v1.2.0 test_swin_transformer.py: test_arch ---------------------------
def test_mmpretrain_custom_arch_with_indivisible_heads_is_refused():
    """mmpretrain builds embed_dims=256, heads (6, 12, 6, 12) and fails only in forward
    (256 channels / 6 heads); SwinBackbone refuses it when built."""
    with pytest.raises(ValueError, match='256 channels .* not divisible by num_heads'):
        SwinBackbone(embed_dims=256, depths=(2, 2, 4, 2), num_heads=(6, 12, 6, 12))


def test_mmpretrain_custom_arch_without_matching_lengths_is_refused():
    with pytest.raises(ValueError, match='equal length'):
        SwinBackbone(embed_dims=96, depths=(2, 2, 18), num_heads=(3, 6, 12, 16))


def test_mmpretrain_custom_arch_structure():
    depths, num_heads = (2, 2, 4, 2), (8, 16, 8, 16)
    model = on_meta(embed_dims=256, depths=depths, num_heads=num_heads)
    for i, stage in enumerate(model.stages):
        assert stage.blocks[0].attn.w_msa.qkv.in_features == 256 * 2 ** i
        assert len(stage.blocks) == depths[i]
        assert stage.blocks[0].attn.w_msa.num_heads == num_heads[i]


# --- mmpretrain: test_forward ---------------------------------------------------------
@pytest.mark.parametrize('arch,channels', [('tiny', 768), ('small', 768), ('base', 1024),
                                           ('large', 1536)])
def test_mmpretrain_archs_last_stage(arch, channels):
    """mmpretrain runs each arch at 224 for a (1, channels, 7, 7) output; the forward
    at 224 is test_mmpretrain_multiple_output_indices (base), here the structure."""
    model = on_meta(out_indices=(3,), **arch_settings(arch))
    assert model.norm3.normalized_shape == (channels,)
    assert model.stages[3].blocks[0].attn.w_msa.qkv.in_features == channels
    assert [len(stage.blocks) for stage in model.stages] == list(
        arch_settings(arch)['depths'])


def test_mmpretrain_window_12_at_384_and_padded_at_224():
    model = on_meta(window_size=12, out_indices=(3,), **arch_settings('base'))
    assert output_shapes(model, 384, 384) == [(1, 1024, 12, 12)]
    # mmpretrain refuses a 7x7 map under a 12x12 window unless pad_small_map=True;
    # SwinBackbone pads as mmdet does, and gives mmpretrain's padded shape.
    with torch.no_grad():
        out, = SwinBackbone(window_size=12, out_indices=(3,), **SLIM).eval()(images(1, 224, 224))
    assert out.shape == (1, 128, 7, 7) and torch.isfinite(out).all()


def test_mmpretrain_multiple_output_indices():
    model = on_meta(out_indices=(0, 1, 2, 3), **arch_settings('base'))
    assert output_shapes(model, 224, 224) == [
        (1, 128 * stride, 56 // stride, 56 // stride) for stride in (1, 2, 4, 8)]


def test_mmpretrain_checkpoint_forward_in_training():
    model = SwinBackbone(with_cp=True, out_indices=(3,), **SLIM)
    assert all(stage.with_cp for stage in model.stages)
    model.init_weights()
    model.train()
    out, = model(images(1, 64, 64))  # mmpretrain: 224x224; smaller for speed
    assert out.shape == (1, 128, 2, 2)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_mmpretrain_dynamic_input_shapes():
    model = SwinBackbone(out_indices=(3,), **SLIM).eval()
    for height, width in ((224, 224), (256, 256), (256, 309)):
        with torch.no_grad():
            out, = model(images(1, height, width))
        assert out.shape == (1, 128, math.ceil(height / 32), math.ceil(width / 32))


# --- mmpretrain: test_structure -------------------------------------------------------
def test_mmpretrain_drop_path_rate_decays_linearly():
    model = on_meta(drop_path_rate=0.2, **arch_settings('base'))
    blocks = [block for stage in model.stages for block in stage.blocks]
    for i, block in enumerate(blocks):
        expected = 0.2 / (len(blocks) - 1) * i
        for drop in (block.ffn.dropout_layer, block.attn.drop):
            assert getattr(drop, 'drop_prob', 0.0) == pytest.approx(expected)


def test_mmpretrain_first_stage_frozen():
    """mmpretrain's frozen_stages=0 (patch embedding and first stage) is mmdet's 1."""
    model = SwinBackbone(frozen_stages=1, out_indices=(0, 1, 2, 3), **SLIM)
    model.init_weights()
    model.train()
    assert not model.patch_embed.training
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert not any(p.requires_grad for p in model.norm0.parameters())
    for i in range(1, 4):
        assert all(p.requires_grad for p in model.stages[i].parameters())
        assert all(p.requires_grad for p in getattr(model, f'norm{i}').parameters())


# --- mmpretrain: test_init_weights -----------------------------------------------------
def test_mmpretrain_layer_init_cfg_also_draws_the_absolute_embedding():
    model = SwinBackbone(use_abs_pos_embed=True, **SLIM, init_cfg=[
        dict(type='Kaiming', layer='Conv2d', mode='fan_in', nonlinearity='linear')])
    before = model.patch_embed.projection.weight.detach().clone()
    assert torch.equal(model.absolute_pos_embed, torch.zeros_like(model.absolute_pos_embed))
    model.init_weights()
    assert not torch.allclose(before, model.patch_embed.projection.weight)
    assert not torch.allclose(model.absolute_pos_embed, torch.tensor(0.))


@pytest.fixture
def saved_224(tmp_path):
    """A randomly initialised slim model with an absolute embedding, saved at 224."""
    model = SwinBackbone(use_abs_pos_embed=True, **SLIM)
    model.init_weights()
    path = tmp_path / 'swin_224.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    return model, path


def test_mmpretrain_checkpoint_loads_back_strictly(saved_224):
    model, path = saved_224
    loaded = SwinBackbone(use_abs_pos_embed=True, **SLIM)
    load_checkpoint(loaded, str(path), strict=True)
    assert torch.equal(loaded.absolute_pos_embed, model.absolute_pos_embed)


def test_mmpretrain_checkpoint_into_another_img_size_resizes_the_embedding(saved_224):
    model, path = saved_224
    loaded = SwinBackbone(use_abs_pos_embed=True, pretrain_img_size=384, **SLIM)
    load_checkpoint(loaded, str(path), strict=True)
    expected = resample_abs_pos_embed(model.absolute_pos_embed.detach(), [96, 96], [56, 56],
                                      num_prefix_tokens=0, antialias=False)
    assert torch.allclose(loaded.absolute_pos_embed, expected, atol=1e-6)


def test_mmpretrain_v1_checkpoint_with_final_norm_named_norm_loads_strictly(saved_224):
    """mmpretrain's _version 1 (and the official layout) call the last output norm
    ``norm``; mmpretrain renames it to ``norm3`` when loading."""
    model, path = saved_224
    state = dict(model.state_dict())  # a plain dict: no version metadata, as in old files
    for name in ('weight', 'bias'):
        state[f'norm.{name}'] = state.pop(f'norm3.{name}')
    torch.save(dict(state_dict=state), path)
    loaded = SwinBackbone(use_abs_pos_embed=True, **SLIM)
    load_checkpoint(loaded, str(path), strict=True)
    assert torch.equal(loaded.norm3.weight, model.norm3.weight)
