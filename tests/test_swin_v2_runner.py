"""SwinV2Backbone through tools/train.py's real mmengine Runner: ``load_from`` converts
every V2 layout it can place (the load hook), and ``--resume`` of a V2 run ends
bit-identical to the uninterrupted run.

The model is the demo UPerNet config (configs/demo, synthetic ADE20K-layout data) with
its backbone swapped for a SwinV2Backbone of the known-answer architecture
(tests/swinv2_known_answers), so the official code's own file and mmpretrain's can be
loaded. ``load_from`` takes whole-model checkpoints (backbone under ``backbone.``): an
mmpretrain classifier checkpoint as mmpretrain writes it, the official names under
``backbone.`` (derived buffers and all), and a bare classification file (timm's, no
prefix) once ``swin2mm`` has converted it. Runner runs (5 s each here): one in the quick
tier, the rest slow.
"""
import importlib.util
import re
from pathlib import Path

import pytest
import torch

from swin_mm.checkpoints import read_checkpoint
from swin_mm.checkpoints.layouts import unwrap
from swin_mm.checkpoints.v2_layouts import convert_v2_state_dict
from swin_mm.commands.swin2mm import main as swin2mm
from swin_mm_dev.synthetic import write_ade20k
from test_swin_v2_known_answers import ANSWERS, LAYOUT_FILES, layout_checkpoint

REPO = Path(__file__).resolve().parents[1]
CONFIG = """
_base_ = ['{base}']
model = dict(
    backbone=dict(
        _delete_=True, type='SwinV2Backbone', embed_dims=4, depths=(2, 2, 4, 2),
        num_heads=(2, 2, 4, 8), window_size=4, pretrained_window_size=8,
        drop_path_rate=0.1),
    decode_head=dict(in_channels=[4, 8, 16, 32], channels=16),
    auxiliary_head=dict(in_channels=16, channels=16))
train_dataloader = dict(batch_size=2)
train_cfg = dict(val_begin=100)  # no validation
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3), logger=dict(interval=1))
"""


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """(config file, data root) for the runs."""
    tmp = tmp_path_factory.mktemp('swinv2_runner')
    config = tmp / 'upernet_swinv2_synthetic.py'
    config.write_text(CONFIG.format(base=REPO / 'configs/demo/upernet_swin_synthetic_ade20k.py'))
    return config, write_ade20k(tmp / 'data', num_train=4, num_val=1, size=64)


def _tool(name, setup, work_dir, *args, **options):
    """tools/`name`.py's main in this process (a real Runner) on the V2 config."""
    config, root = setup
    spec = importlib.util.spec_from_file_location(f'{name}_tool', REPO / 'tools' / f'{name}.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    options = {**{f'{split}_dataloader.dataset.data_root': root
                  for split in ('train', 'val', 'test')},
               **dict.fromkeys(('experiment_name', 'visualizer.name'),  # one per Runner
                               f'{work_dir.parent.name}_{work_dir.name}'), **options}
    tool.main([str(config), *args, '--work-dir', str(work_dir), '--cfg-options',
               *[f'{key}={value}' for key, value in options.items()]])


def _train(setup, work_dir, *args, **options):
    """tools/train.py; the last checkpoint."""
    _tool('train', setup, work_dir, *args, **options)
    return read_checkpoint(str(work_dir / f'iter_{options["train_cfg.max_iters"]}.pth'))


def _official_under_backbone(path):
    """The official file's tensors under ``backbone.`` (buffers and final norm included,
    classifier left out), as a whole-model checkpoint."""
    official = unwrap(layout_checkpoint('official'))
    torch.save({'state_dict': {'backbone.' + k: v for k, v in official.items()
                               if not k.startswith('head.')}, 'meta': {}}, path)


def _converted_timm(path):
    assert swin2mm([str(ANSWERS / LAYOUT_FILES['timm']), str(path)]) == 0


def _mmpretrain_as_written(path):
    torch.save(layout_checkpoint('mmpretrain'), path)


@pytest.mark.parametrize('make_file', [
    _official_under_backbone, pytest.param(_converted_timm, marks=pytest.mark.slow),
    pytest.param(_mmpretrain_as_written, marks=pytest.mark.slow)])
def test_load_from_converts_v2_layouts(make_file, setup, tmp_path):
    """One iteration at learning rate 0: the trained checkpoint's backbone holds the
    file's weights converted, and output norms 0-2 (no file has them) initialised."""
    checkpoint = tmp_path / 'load_from.pth'
    make_file(checkpoint)
    saved = _train(setup, tmp_path / 'work', **{'load_from': checkpoint,
                                               'train_cfg.max_iters': 1,
                                               'optim_wrapper.optimizer.lr': 0.0})
    expected = convert_v2_state_dict(unwrap(layout_checkpoint('official'))).backbone
    model = {k[len('backbone.'):]: v for k, v in saved['state_dict'].items()
             if k.startswith('backbone.')}
    assert sorted(set(model) - set(expected)) == [
        f'norm{i}.{kind}' for i in range(3) for kind in ('bias', 'weight')]
    for key, value in expected.items():
        assert torch.equal(model[key], value), key


@pytest.mark.slow
def test_resume_of_a_v2_run_ends_bit_identical(setup, tmp_path):
    """2 iterations from the official file; then from iteration 1 with --resume."""
    _official_under_backbone(tmp_path / 'official.pth')
    whole = _train(setup, tmp_path / 'whole', **{'load_from': tmp_path / 'official.pth',
                                                 'train_cfg.max_iters': 2})
    resumed = _train(setup, tmp_path / 'resumed', '--resume',
                     **{'load_from': tmp_path / 'whole' / 'iter_1.pth',
                        'train_cfg.max_iters': 2})
    assert resumed['meta']['iter'] == 2
    first = read_checkpoint(str(tmp_path / 'whole' / 'iter_1.pth'))['state_dict']
    assert any(not torch.equal(first[k], v) for k, v in whole['state_dict'].items()
               if k.startswith('backbone.'))  # iteration 2 trained the backbone
    assert whole['state_dict'].keys() == resumed['state_dict'].keys()
    for key, value in whole['state_dict'].items():
        assert torch.equal(resumed['state_dict'][key], value), key


@pytest.mark.slow
def test_a_bare_classification_file_given_to_load_from_is_refused_in_one_line(
        setup, tmp_path, capsys):
    """The official ``{'model': ...}`` file has no ``backbone.`` keys, so none of the
    model's weights: one line naming what to do, exit status 2, no checkpoint written."""
    path = tmp_path / 'swinv2_official.pth'
    torch.save(layout_checkpoint('official'), path)
    with pytest.raises(SystemExit) as exit_request:
        _train(setup, tmp_path / 'work', **{'load_from': path, 'train_cfg.max_iters': 1})
    assert exit_request.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith('error: expected the weights of the EncoderDecoder') and \
        f"in {path}, found 209 tensors, none of them the model's" in line, line
    assert not list((tmp_path / 'work').glob('iter_*.pth'))


@pytest.mark.slow
def test_tools_test_loads_a_v2_checkpoint_through_the_hook(setup, tmp_path, capsys):
    """tools/test.py CONFIG CHECKPOINT with the official names under ``backbone.``:
    mmengine's report of missing keys (printed, not logged) names no backbone weight but
    the output norms the file cannot have, and nothing is unexpected."""
    path = tmp_path / 'official.pth'
    _official_under_backbone(path)
    _tool('test', setup, tmp_path / 'work', str(path))
    log = capsys.readouterr().out
    assert re.search(r'Iter\(test\) \[1/1\].*mIoU: \d+\.\d+', log)
    [missing] = re.findall(r'missing keys in source state_dict: (.*)', log)
    backbone = sorted(k for k in missing.split(', ') if k.startswith('backbone.'))
    assert backbone == [f'backbone.norm{i}.{kind}' for i in range(3)
                        for kind in ('bias', 'weight')]
    assert 'unexpected key in source state_dict' not in log
