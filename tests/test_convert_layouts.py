"""Every checkpoint layout converts to features identical to the implementation that
wrote it (timm for official and timm layouts, mmpretrain for its own)."""
import pytest
import torch
import torch.nn.functional as F

from helpers import SMALL, TINY, in_eval, max_abs_diff, pretrained, randomize_
from swin_layouts import official_from_timm, official_state_dict, timm_swin
from swin_mm import SwinBackbone
from swin_mm.checkpoints import CheckpointError
from swin_mm.checkpoints.layouts import convert_checkpoint

# Stages of 112x168 .. 14x21 tokens: all larger than window 7 and divisible by it, where
# timm (fixed-size, windows decided at construction) and the dense-prediction Swin agree.
IMG_SIZE = (448, 672)


def _timm_stage_features(model, images, output_norms):
    """timm's four stage outputs (NCHW), each through the given LayerNorm (weight, bias)."""
    with torch.no_grad():
        stages = model.forward_intermediates(images, norm=False, intermediates_only=True)
    return [F.layer_norm(s.permute(0, 2, 3, 1), s.shape[1:2], w, b).permute(0, 3, 1, 2)
            for s, (w, b) in zip(stages, output_norms)]


def _norm_params(model, count):
    """(weight, bias) of our norm0..norm{count-1}: timm has no per-stage output norms, so the
    reference applies ours (random, not loaded) to timm's pre-norm stage features."""
    return [(getattr(model, f'norm{i}').weight.detach(), getattr(model, f'norm{i}').bias.detach())
            for i in range(count)]


def test_official_schema_matches_timm_model():
    """The hand-built official schema (used for full-size tests) has timm's keys and shapes."""
    from_timm = official_from_timm(timm_swin(SMALL, 224))
    built = official_state_dict(SMALL['embed_dims'], SMALL['depths'], SMALL['num_heads'],
                                num_classes=10)
    assert {k: tuple(v.shape) for k, v in built.items()} == \
        {k: tuple(v.shape) for k, v in from_timm.items()}


@pytest.mark.parametrize('layout', ['official', 'timm'])
def test_official_and_timm_match_timm_forward(layout, tmp_path, images):
    from timm.models.swin_transformer import checkpoint_filter_fn
    source = timm_swin(SMALL, IMG_SIZE)
    official = official_from_timm(source)
    # The reference is timm loaded through its own converter for official checkpoints.
    reference = in_eval(timm_swin(SMALL, IMG_SIZE, seed=1))
    reference.load_state_dict(checkpoint_filter_fn({'model': official}, reference), strict=True)
    path = tmp_path / f'{layout}.pth'
    torch.save({'model': official} if layout == 'official' else source.state_dict(), path)
    assert convert_checkpoint(torch.load(path)).layout == layout

    ours = pretrained(path)
    randomize_(torch.nn.ModuleList([ours.norm0, ours.norm1, ours.norm2]), seed=5)
    norms = _norm_params(ours, 3) + [(reference.norm.weight, reference.norm.bias)]
    x = images(1, *IMG_SIZE)
    with torch.no_grad():
        assert max_abs_diff(ours(x), _timm_stage_features(reference, x, norms)) <= 1e-5
    # The final norm was loaded (not left at its init) and equals timm's.
    assert torch.equal(ours.norm3.weight, source.norm.weight)


def test_window_12_official_matches_timm(tmp_path, images):
    arch = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))
    source = timm_swin(arch, 768, window_size=12)
    path = tmp_path / 'w12.pth'
    torch.save({'model': official_from_timm(source)}, path)
    ours = pretrained(path, window_size=12, **arch)
    randomize_(torch.nn.ModuleList([ours.norm0, ours.norm1, ours.norm2]), seed=5)
    norms = _norm_params(ours, 3) + [(source.norm.weight, source.norm.bias)]
    x = images(1, 768, 768)
    with torch.no_grad():
        assert max_abs_diff(ours(x), _timm_stage_features(source, x, norms)) <= 1e-5


def test_mmpretrain_matches_mmpretrain_forward(tmp_path, images):
    from mmpretrain.models.backbones import SwinTransformer
    peer = in_eval(randomize_(SwinTransformer(
        arch=dict(SMALL), img_size=448, out_indices=(0, 1, 2, 3), drop_path_rate=0.0)))
    state = {'backbone.' + k: v for k, v in peer.state_dict().items()}
    state.update({'head.fc.weight': torch.randn(10, 256), 'head.fc.bias': torch.randn(10)})
    path = tmp_path / 'mmpretrain.pth'
    torch.save({'state_dict': state, 'meta': {'epoch': 300}}, path)
    conversion = convert_checkpoint(torch.load(path))
    assert conversion.layout == 'mmpretrain'
    assert conversion.dropped == ['head.fc.weight', 'head.fc.bias']
    ours = pretrained(path)
    x = images(1, 448, 448)
    with torch.no_grad():
        assert max_abs_diff(ours(x), peer(x)) <= 1e-5


def test_mmdet_layout_passes_through_unchanged():
    from mmdet.models.backbones import SwinTransformer
    state = {'backbone.' + k: v for k, v in SwinTransformer(**SMALL).state_dict().items()}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(2)
    conversion = convert_checkpoint({'state_dict': state})
    assert conversion.layout == 'mmdet'
    assert (conversion.renamed, conversion.reordered, conversion.dropped) == (0, 0, [])
    out = conversion.state_dict()
    assert list(out) == list(state) and all(out[k] is state[k] for k in state)


def test_official_det_release_converts_backbone_and_keeps_the_rest(images):
    """Swin-Det / Swin-Seg: official names under backbone., norm0..3, no attn_mask."""
    source = timm_swin(SMALL, IMG_SIZE)
    official = official_from_timm(source)
    gen = torch.Generator().manual_seed(0)  # weights near 1, as trained norms are
    norms = {f'norm{i}.{p}': (p == 'weight') + 0.02 * torch.randn(32 * 2 ** i, generator=gen)
             for i in range(4) for p in ('weight', 'bias')}
    backbone = {k: v for k, v in official.items()
                if not k.startswith(('head.', 'norm.')) and 'attn_mask' not in k}
    state = {'backbone.' + k: v for k, v in {**backbone, **norms}.items()}
    others = {'neck.fpn_convs.0.conv.weight': torch.randn(2),
              'roi_head.bbox_head.0.shared_convs.0.bn.running_mean': torch.randn(2)}
    conversion = convert_checkpoint({'state_dict': {**state, **others}, 'meta': {}})
    assert conversion.layout == 'official-det'
    out = conversion.state_dict()
    assert all(out[k] is v for k, v in others.items())
    assert all(k.startswith('backbone.') for k in set(out) - set(others))
    ours = SwinBackbone(drop_path_rate=0.0, **SMALL).eval()
    ours.load_state_dict(conversion.backbone, strict=True)
    x = images(1, *IMG_SIZE)
    reference = _timm_stage_features(source, x, [(norms[f'norm{i}.weight'], norms[f'norm{i}.bias'])
                                                 for i in range(4)])
    with torch.no_grad():
        assert max_abs_diff(ours(x), reference) <= 1e-5


def test_official_det_absolute_pos_embed_is_reshaped():
    official = official_from_timm(timm_swin(SMALL, 224))
    state = {'backbone.' + k: v for k, v in official.items() if not k.startswith('head.')}
    state['backbone.absolute_pos_embed'] = torch.arange(32 * 56 * 56.).reshape(1, 32, 56, 56)
    embed = convert_checkpoint(state).backbone['absolute_pos_embed']
    assert embed.shape == (1, 56 * 56, 32)
    assert torch.equal(embed[0, 57], state['backbone.absolute_pos_embed'][0, :, 1, 1])


@pytest.mark.parametrize('keys,message', [
    ({'layers.0.blocks.0.attn.cpb_mlp.0.weight': 1, 'layers.0.blocks.0.attn.logit_scale': 1},
     'found Swin v2 .*cpb_mlp'),
    ({'backbone.stages.0.blocks.0.attn.w_msa.cpb_mlp.0.weight': 1}, 'found Swin v2'),
    ({'features.0.0.weight': 1, 'features.1.0.attn.qkv.weight': 1}, 'found the torchvision'),
    ({'conv1.weight': 1, 'bn1.weight': 1}, 'unrecognised layout; first keys: conv1.weight'),
])
def test_foreign_layouts_are_named(keys, message):
    with pytest.raises(CheckpointError, match=message):
        convert_checkpoint({'model': {k: torch.zeros(v) for k, v in keys.items()}})


def test_unexpected_official_keys_are_named():
    official = official_from_timm(timm_swin(SMALL, 224))
    official['layers.1.blocks.0.attn.extra.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointError,
                       match=r'official layout: unexpected keys layers\.1\.blocks\.0\.attn\.extra'):
        convert_checkpoint({'model': official})


def _mmseg_convert_swin():
    """mmseg's own official -> mmseg converter (tools/model_converters/swin2mmseg.py)."""
    import importlib.util
    import os

    import mmseg
    path = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'tools', 'model_converters',
                        'swin2mmseg.py')
    spec = importlib.util.spec_from_file_location('swin2mmseg', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.convert_swin


@pytest.mark.parametrize('peer_converter', ['mmseg', 'mmdet'])
def test_peer_converted_files_load_with_their_leftovers(peer_converter, tmp_path, images):
    """Files from mmseg's swin2mmseg / mmdet's swin_converter keep the official `norm`
    and the attn_mask buffers; the norm becomes norm3, the masks are dropped."""
    from mmdet.models.backbones.swin import swin_converter
    source = timm_swin(SMALL, IMG_SIZE)
    official = official_from_timm(source)
    convert = _mmseg_convert_swin() if peer_converter == 'mmseg' else swin_converter
    state = convert(official)
    assert any(k.endswith('attn_mask') for k in state) and any('norm.' in k for k in state)
    path = tmp_path / f'{peer_converter}.pth'
    torch.save(state, path)
    conversion = convert_checkpoint(torch.load(path))
    assert conversion.layout == 'mmdet' and conversion.renamed == 2
    assert all(k.endswith('attn_mask') for k in conversion.dropped)
    ours = pretrained(path)
    randomize_(torch.nn.ModuleList([ours.norm0, ours.norm1, ours.norm2]), seed=5)
    norms = _norm_params(ours, 3) + [(source.norm.weight, source.norm.bias)]
    x = images(1, *IMG_SIZE)
    with torch.no_grad():
        assert max_abs_diff(ours(x), _timm_stage_features(source, x, norms)) <= 1e-5


def test_official_file_through_init_cfg_logs_new_norms_not_missing(tmp_path, log_lines):
    """init_cfg=Pretrained with the official Swin-T file name and layout, full size."""
    path = tmp_path / 'swin_tiny_patch4_window7_224.pth'
    official = official_state_dict(96, (2, 2, 6, 2), (3, 6, 12, 24))
    torch.save({'model': official}, path)
    model = SwinBackbone(**TINY, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert any('official layout' in m for m in log_lines.lines)
    assert any('norm0, norm1, norm2 keep their initialisation' in m for m in log_lines.lines)
    assert not log_lines.at('WARNING') and not log_lines.at('ERROR'), log_lines.lines
    assert torch.equal(model.norm3.bias, official['norm.bias'])
    assert torch.equal(model.stages[1].blocks[1].attn.w_msa.qkv.weight,
                       official['layers.1.blocks.1.attn.qkv.weight'])
