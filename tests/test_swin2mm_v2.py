"""swin2mm on Swin V2 files: each of the four layouts (the known-answer files of
tests/swinv2_known_answers: the official code's own file, timm's, mmpretrain's and
torchvision's, with the same weights) converts, verifies, and the result loads strictly
into the SwinV2Backbone its meta describes, giving the features of the raw file (through
``init_cfg``) and the official code's; the pretrained windows a file's coordinate tables
hold are read back (mmpretrain's with per-stage pretrained windows); forced layouts and
bad V2 files are one-line errors that write nothing."""
import os

import pytest
import torch
from mmpretrain.models.backbones import SwinTransformerV2

from helpers import images
from swin_mm import SwinV2Backbone
from swin_mm.checkpoints.layouts import strip_prefix, unwrap
from swin_mm.checkpoints.v2_layouts import convert_v2_state_dict
from swin_mm.commands.swin2mm import main
from swin_mm.commands.v2_model_arguments import v2_model_arguments
from test_swin_v2_known_answers import (ANSWERS, LAYOUT_FILES, assert_matches_official,
                                        layout_checkpoint)

# What each file's coordinate tables say: the official file was built at 128 with window
# 8, so its stage 3 (a 4x4 map) has window 4; timm's saves no tables.
WINDOWS = {'official': 'window_size=8 pretrained_window_size=(8, 8, 8, 4)',
           'timm': 'window_size=unknown pretrained_window_size=unknown',
           'mmpretrain': 'window_size=8 pretrained_window_size=8',
           'torchvision': 'window_size=8 pretrained_window_size=8'}


def _convert(argv, capsys):
    assert main([str(a) for a in argv]) == 0
    return capsys.readouterr().out


def _fails(argv, capsys, expected):
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('swin2mm: error: '), err
    assert expected in err, err


def _described_backbone(path) -> SwinV2Backbone:
    """The SwinV2Backbone the converted file's meta describes, loaded strictly."""
    saved = torch.load(path, weights_only=True)
    assert saved['meta']['backbone'] == 'SwinV2Backbone'
    model = SwinV2Backbone(**v2_model_arguments(saved['meta']['architecture']),
                           drop_path_rate=0.)
    model.load_state_dict(strip_prefix(saved['state_dict'], 'backbone.'), strict=True)
    return model.eval()


@pytest.mark.parametrize('layout', sorted(LAYOUT_FILES))
def test_each_layout_converts_verifies_and_gives_the_raw_files_features(layout, tmp_path,
                                                                        capsys):
    src, dst = ANSWERS / LAYOUT_FILES[layout], tmp_path / 'converted.pth'
    out = _convert([src, dst, '--verify'], capsys)
    assert f'layout: {layout} (Swin V2: load into SwinV2Backbone)' in out
    assert ('architecture: embed_dims=4 depths=(2, 2, 4, 2) num_heads=(2, 2, 4, 8) '
            f'mlp_ratio=4 {WINDOWS[layout]} out_indices=(3,)') in out
    assert 'verify: strict load and one forward pass OK' in out
    converted = _described_backbone(dst)
    raw = SwinV2Backbone(**v2_model_arguments(torch.load(dst)['meta']['architecture']),
                         drop_path_rate=0., init_cfg=dict(type='Pretrained', checkpoint=str(src)))
    raw.init_weights()
    raw.eval()
    x = images(1, 75, 93)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(converted(x), raw(x)))
    # The architecture the meta gives reproduces the official code (window 8 at 128).
    assert_matches_official(converted, 'w8_img128')


@pytest.mark.parametrize('extra_norms', [0, 2])
def test_per_stage_pretrained_windows_are_read_from_the_tables(extra_norms, tmp_path, capsys):
    """mmpretrain's V2 at window 8 with pretrained windows 4, 6, 10, 12 (its tables'
    values differ per stage), without and with the H/G sizes' extra norms (here every 2
    blocks): the meta's architecture gives mmpretrain's outputs."""
    peer = SwinTransformerV2(
        arch=dict(embed_dims=8, depths=[1, 1, 4, 1], num_heads=[1, 2, 2, 4],
                  extra_norm_every_n_blocks=extra_norms), img_size=256, window_size=8,
        drop_path_rate=0., out_indices=(0, 1, 2, 3), pad_small_map=True,
        pretrained_window_sizes=[4, 6, 10, 12])
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in peer.named_parameters():
            param.copy_(0.3 * torch.randn(param.shape, generator=gen)
                        + (1 if name.endswith('norm.weight') else 0))
    src, dst = tmp_path / 'mmpretrain.pth', tmp_path / 'converted.pth'
    torch.save({'state_dict': {'backbone.' + k: v for k, v in peer.state_dict().items()}}, src)
    out = _convert([src, dst], capsys)
    assert 'window_size=8 pretrained_window_size=(4, 6, 10, 12) out_indices=(0, 1, 2, 3)' in out
    assert ('extra_norm_every_n_blocks=2' in out) == bool(extra_norms)
    x = images(2, 70, 90, seed=2)
    peer.eval()  # (its train() returns None)
    with torch.no_grad():
        expected, got = peer(x), _described_backbone(dst)(x)
    assert max(float((g - e).abs().max()) for g, e in zip(got, expected)) <= 1e-4


def test_forced_layouts(tmp_path, capsys):
    official = ANSWERS / LAYOUT_FILES['official']
    out = _convert([official, tmp_path / 'a.pth', '--layout', 'official'], capsys)
    assert 'layout: official (Swin V2' in out
    _fails([official, tmp_path / 'b.pth', '--layout', 'official-det'], capsys,
           'expected a Swin V2 layout (official, timm, mmpretrain, torchvision, swin_mm) for '
           "this Swin V2 file, found 'official-det'")
    v1 = tmp_path / 'v1.pth'
    torch.save({'model': {'patch_embed.proj.weight': torch.zeros(8, 3, 4, 4)}}, v1)
    _fails([v1, tmp_path / 'b.pth', '--layout', 'torchvision'], capsys,
           "expected a Swin v1 layout (official, official-det, timm, mmpretrain, mmdet) for "
           "this Swin v1 file, found 'torchvision'")
    _fails([official, tmp_path / 'b.pth', '--layout', 'timm'], capsys, 'inconsistent')
    assert not (tmp_path / 'b.pth').exists()


@pytest.mark.parametrize('change, expected', [
    (lambda sd: sd.__setitem__('layers.1.blocks.1.attn.qkv.weight', torch.zeros(5, 8)),
     'stages.1.blocks.1.attn.w_msa.qkv.weight expected (24, 8)'),
    (lambda sd: sd.__setitem__('layers.0.blocks.0.attn.extra', torch.zeros(1)),
     'Swin V2 official layout: unexpected keys layers.0.blocks.0.attn.extra'),
    (lambda sd: sd.pop('layers.2.blocks.3.mlp.fc2.weight'),
     'missing keys [\'stages.2.blocks.3.ffn.layers.1.weight\']'),
])
def test_bad_v2_files_are_one_line_errors_that_write_nothing(change, expected, tmp_path,
                                                             capsys):
    state = unwrap(layout_checkpoint('official'))
    change(state)
    src = tmp_path / 'bad.pth'
    torch.save({'model': state}, src)
    _fails([src, tmp_path / 'out.pth', '--verify'], capsys, expected)
    assert os.listdir(tmp_path) == ['bad.pth']


def test_coordinate_tables_that_do_not_say_their_window_give_none():
    from swin_mm.checkpoints import CheckpointError
    from swin_mm.checkpoints.implied_sizes import (pretrained_window_of_coords_table,
                                                   window_of_coords_table)
    official = unwrap(layout_checkpoint('official'))['layers.0.blocks.0.attn.relative_coords_table']
    assert pretrained_window_of_coords_table(official, 'k') == (8, 8)
    assert window_of_coords_table(official[:, :, :7], 'k') == (8, 4)
    assert pretrained_window_of_coords_table(official[:, :, :7], 'k') is None  # not centred
    assert pretrained_window_of_coords_table(torch.rand(1, 15, 15, 2), 'k') is None
    assert pretrained_window_of_coords_table(torch.zeros(1, 1, 1, 2), 'k') is None  # window 1
    with pytest.raises(CheckpointError, match=r'k: expected shape \(1, 2h-1, 2w-1, 2\)'):
        window_of_coords_table(torch.zeros(1, 14, 15, 2), 'k')
    # In a file, a malformed table (a derived buffer, never loaded) leaves them unknown.
    state = unwrap(layout_checkpoint('official'))
    state['layers.1.blocks.0.attn.relative_coords_table'] = torch.zeros(1, 14, 15, 2)
    conversion = convert_v2_state_dict(state)
    assert conversion.windows is None and conversion.pretrained_windows is None
