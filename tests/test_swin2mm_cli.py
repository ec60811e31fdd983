"""The swin2mm command (console script and tools/swin2mm.py) end to end: output, peers
loading it, bad input, safety, full sizes."""
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import SMALL, TINY, RunsCode, in_eval, max_abs_diff
from swin_layouts import official_from_timm, official_state_dict, timm_swin
from swin_mm import SwinBackbone
from swin_mm.checkpoints import CheckpointError
from swin_mm.commands.swin2mm import convert_file, main

TOOL = Path(__file__).resolve().parents[1] / 'tools' / 'swin2mm.py'
# The console script pip installs beside this interpreter, and the repository's script.
COMMANDS = {'console script': [str(Path(sys.executable).parent / 'swin2mm')],
            'tools/swin2mm.py': [sys.executable, str(TOOL)]}


def _fingerprint(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


@pytest.fixture(scope='module')
def official_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('official') / 'swin_small_official.pth'
    torch.save({'model': official_from_timm(timm_swin(SMALL, 224))}, path)
    return path


def _fails(argv, capsys, expected):
    """Runs the CLI in-process; asserts exit 2 and one stderr line matching `expected`."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('swin2mm: error: '), err
    assert expected in err, err
    return err


@pytest.mark.parametrize('command', ['console script',
                                     pytest.param('tools/swin2mm.py', marks=pytest.mark.slow)])
def test_cli_end_to_end_official(command, official_file, tmp_path, images):
    dst = tmp_path / 'converted.pth'
    before = _fingerprint(official_file)
    run = subprocess.run([*COMMANDS[command], str(official_file), str(dst), '--verify'],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert 'layout: official' in out
    assert ('embed_dims=32 depths=(2, 2, 2, 2) num_heads=(1, 2, 4, 8) window_size=7 '
            'mlp_ratio=4 pretrain_img_size=224 use_abs_pos_embed=False out_indices=(3,)') in out
    # renamed: 8 blocks x 13 (all but the index buffer: layers -> stages) + patch_embed.proj 2
    # + 3 merging x 3 (reordered) + final norm 2; dropped: 8 indices + 3 attn_mask + head 2;
    # kept: patch_embed.norm 2; one index per block rebuilt.
    assert 'tensors: 117 renamed (9 of them reordered), 13 dropped, 2 kept, 8 ' in out
    assert 'verify: strict load and one forward pass OK' in out and f'wrote: {dst}' in out
    assert _fingerprint(official_file) == before
    assert [p.name for p in tmp_path.iterdir()] == [dst.name]  # no temporary file left

    saved = torch.load(dst, weights_only=True)
    assert set(saved) == {'state_dict', 'meta'}
    assert saved['meta']['layout'] == 'official'
    assert saved['meta']['source'] == str(official_file.resolve())

    # mmengine's load_checkpoint, as load_from does for a detector whose backbone is ours.
    from mmengine.runner import load_checkpoint
    detector = torch.nn.Module()
    detector.backbone = SwinBackbone(drop_path_rate=0.0, out_indices=(3,), **SMALL)
    load_checkpoint(detector, str(dst), strict=True)
    # mmdet's own SwinTransformer through its init_cfg (it keeps backbone.* keys).
    from mmdet.models.backbones import SwinTransformer
    from mmengine.config import ConfigDict
    peer = SwinTransformer(drop_path_rate=0.0, out_indices=(3,), **SMALL,
                           init_cfg=ConfigDict(type='Pretrained', checkpoint=str(dst)))
    peer.init_weights()
    x = images(1, 96, 80)
    with torch.no_grad():
        assert max_abs_diff(in_eval(peer)(x), in_eval(detector.backbone)(x)) <= 1e-5
    for key, value in peer.state_dict().items():
        assert torch.equal(value, detector.backbone.state_dict()[key]), key


def test_cli_forced_layout(official_file, tmp_path, capsys):
    dst = tmp_path / 'out.pth'
    assert main([str(official_file), str(dst), '--layout', 'official']) == 0
    assert 'layout: official' in capsys.readouterr().out
    _fails([official_file, tmp_path / 'b.pth', '--layout', 'mmdet'], capsys,
           'expected patch_embed.projection.weight')
    _fails([official_file, tmp_path / 'b.pth', '--layout', 'v3'], capsys, "invalid choice: 'v3'")
    assert not (tmp_path / 'b.pth').exists()


def test_destination_rules(official_file, tmp_path, capsys):
    _fails([official_file, official_file], capsys, 'expected DST different from SRC')
    _fails([official_file, official_file.parent / '.' / official_file.name], capsys,
           'different from SRC')
    dst = tmp_path / 'exists.pth'
    dst.write_bytes(b'keep me')
    _fails([official_file, dst], capsys, 'pass --overwrite')
    assert dst.read_bytes() == b'keep me'
    _fails([official_file, tmp_path], capsys, 'found a directory')
    _fails([official_file, tmp_path / 'no' / 'dir.pth'], capsys, 'expected an existing directory')
    assert main([str(official_file), str(dst), '--overwrite']) == 0
    assert 'state_dict' in torch.load(dst, weights_only=True)


def _write_bad_inputs(tmp_path, official_file):
    (tmp_path / 'empty.pth').write_bytes(b'')
    data = official_file.read_bytes()
    (tmp_path / 'truncated.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'text.pth').write_text('not a checkpoint\n')
    torch.save([1, 2, 3], tmp_path / 'list.pth')
    torch.save({'state_dict': {'conv1.weight': torch.zeros(3)}}, tmp_path / 'resnet.pth')
    bad = torch.load(official_file)['model']
    bad['layers.1.blocks.1.attn.qkv.weight'] = torch.zeros(5, 64)
    torch.save({'model': bad}, tmp_path / 'shapes.pth')


@pytest.mark.parametrize('name,expected', [
    ('missing.pth', 'found no file at'),
    ('empty.pth', 'found an empty file'),
    ('truncated.pth', 'expected a torch checkpoint, could not read'),
    ('text.pth', 'expected a torch checkpoint, could not read'),
    ('list.pth', 'expected a checkpoint dict, found list'),
    ('resnet.pth', 'unrecognised layout; first keys: conv1.weight'),
    ('shapes.pth', 'stages.1.blocks.1.attn.w_msa.qkv.weight expected (192, 64)'),
    ('.', 'found a directory'),
])
def test_bad_input_is_one_line_exit_2_nothing_written(name, expected, official_file, tmp_path,
                                                      capsys):
    _write_bad_inputs(tmp_path, official_file)
    before = sorted(os.listdir(tmp_path))
    _fails([tmp_path / name, tmp_path / 'out.pth'], capsys, expected)
    assert sorted(os.listdir(tmp_path)) == before


def test_code_carrying_pickle_runs_nothing(tmp_path, capsys, official_file):
    marker = tmp_path / 'code_ran'
    state = torch.load(official_file)
    state['meta'] = RunsCode(marker)
    evil = tmp_path / 'evil.pth'
    torch.save(state, evil)
    assert not marker.exists()
    _fails([evil, tmp_path / 'out.pth'], capsys, 'could run code')
    model = SwinBackbone(**SMALL, init_cfg=dict(type='Pretrained', checkpoint=str(evil)))
    with pytest.raises(CheckpointError, match='could run code'):
        model.init_weights()
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()


def test_unsafe_load_opt_in(tmp_path, official_file, capsys):
    import argparse
    state = torch.load(official_file)
    state['args'] = argparse.Namespace(lr=0.1)  # what older training scripts saved
    path = tmp_path / 'with_args.pth'
    torch.save(state, path)
    _fails([path, tmp_path / 'out.pth'], capsys, 'refused')
    assert main([str(path), str(tmp_path / 'out.pth'), '--unsafe-load']) == 0


@pytest.mark.parametrize('arch,window,img_size', [
    (TINY, 7, 224),
    pytest.param(dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)), 12, 384,
                 marks=pytest.mark.slow),
])
def test_full_size_official_converts_quickly(arch, window, img_size, tmp_path, capsys):
    src, dst = tmp_path / 'full.pth', tmp_path / 'out.pth'
    torch.save({'model': official_state_dict(arch['embed_dims'], arch['depths'],
                                             arch['num_heads'], window, img_size)}, src)
    start = time.perf_counter()
    lines = convert_file(str(src), str(dst))
    elapsed = time.perf_counter() - start
    assert (f'window_size={window} mlp_ratio=4 pretrain_img_size={img_size} '
            'use_abs_pos_embed=False') in lines[1]
    assert elapsed < 60, f'{elapsed:.1f} s'  # a few seconds unloaded; generous for shared CI
    saved = torch.load(dst, weights_only=True, mmap=True)['state_dict']
    expected = SwinBackbone(**arch, window_size=window, out_indices=(3,)).state_dict()
    assert {k: v.shape for k, v in expected.items()} == \
        {k[len('backbone.'):]: v.shape for k, v in saved.items()}
