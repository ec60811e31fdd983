"""What a user meets through tools/dist_train.sh, dist_test.sh, train.py and test.py when
something is wrong: one line that says what to do, status 2, no traceback and nothing
run from a hostile checkpoint; two runs on one machine at once; a console that shows
progress and metrics, with the config dump in the log file."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import RunsCode
from swin_mm_dev.synthetic import write_ade20k, write_coco
from swin_mm_dev.synthetic.coco import COCO_CATEGORY_NAMES, SHAPE_CATEGORIES

REPO = Path(__file__).resolve().parents[1]
SEG_CONFIG = 'configs/demo/upernet_swin_synthetic_ade20k.py'
DET_CONFIG = 'configs/demo/cascade_mask_rcnn_swin_synthetic_coco.py'


def _start(args, **env):
    env = {**os.environ, 'PYTHON': sys.executable, **env}
    env.pop('PORT', None)  # one node: the launcher takes a free port itself
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process, timeout=300):
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def _one_line_error(args, expected, **env) -> str:
    status, stdout, stderr = _finish(_start(args, **env))
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1, stdout[-2000:] + stderr[-3000:]
    assert lines[0].startswith(('error: ', 'train.py: error: ')), lines[0]
    assert expected in lines[0], lines[0]
    assert 'weights_only' not in lines[0]  # never a hint to turn the check off
    return lines[0]


@pytest.mark.parametrize('args,expected', [
    (['tools/dist_train.sh', SEG_CONFIG, '0'], "found '0'"),
    (['tools/dist_train.sh', SEG_CONFIG, '-1'], "found '-1'"),
    (['tools/dist_train.sh', '2', SEG_CONFIG], f"found '{SEG_CONFIG}' (usage: "
                                                'tools/dist_train.sh CONFIG NUM_PROCESSES'),
    (['tools/dist_test.sh', SEG_CONFIG, 'x.pth', 'two'], "found 'two' (usage: "
                                                         'tools/dist_test.sh CONFIG CHECKPOINT'),
])
def test_launcher_arguments_are_checked_before_anything_starts(args, expected):
    _one_line_error(args, 'expected NUM_PROCESSES, a whole number of processes per node '
                          'of at least 1, ' + expected)


@pytest.fixture(scope='module')
def seg_data(tmp_path_factory):
    root = write_ade20k(tmp_path_factory.mktemp('seg') / 'data', num_train=8, num_val=4,
                        size=64)
    return ['--cfg-options'] + [f'{split}_dataloader.dataset.data_root={root}'
                                for split in ('train', 'val', 'test')]


@pytest.mark.slow
def test_worker_errors_through_the_launcher_are_one_line(seg_data, tmp_path):
    """Every process hits the same problem; the user reads it once, without torchrun's
    ChildFailedError report."""
    _one_line_error(['tools/dist_train.sh', SEG_CONFIG, '2', '--bogus'],
                    'unrecognized arguments: --bogus')
    _one_line_error(['tools/dist_test.sh', 'configs/nope.py', 'x.pth', '2'],
                    'expected a config file, found nothing at configs/nope.py')
    _one_line_error(['tools/dist_test.sh', SEG_CONFIG, str(tmp_path / 'none.pth'), '2',
                     '--work-dir', str(tmp_path / 'work'), *seg_data],
                    f'expected a checkpoint file, found no file at {tmp_path}/none.pth')


def _hostile(tmp_path) -> Path:
    """A checkpoint whose unpickling would create `ran` (arbitrary code)."""
    path = tmp_path / 'evil.pth'
    torch.save({'meta': {'iter': 2}, 'state_dict': {}, 'payload': RunsCode(tmp_path / 'ran')},
               path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize('way', ['test.py', 'dist_test.sh', 'load_from', '--resume'])
@pytest.mark.parametrize('old_default', [False, True], ids=['torch-default', 'force-no-wo'])
def test_hostile_checkpoint_runs_nothing(way, old_default, seg_data, tmp_path):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 restores torch's pre-2.6 default, under which
    mmengine's own torch.load would unpickle anything."""
    if way in ('dist_test.sh', 'load_from') and not old_default:
        pytest.skip('the same path as test.py / --resume under torch\'s default')
    evil, work = _hostile(tmp_path), tmp_path / 'work'
    args = {
        'test.py': [sys.executable, 'tools/test.py', SEG_CONFIG, str(evil)],
        'dist_test.sh': ['tools/dist_test.sh', SEG_CONFIG, str(evil), '2'],
        'load_from': ['tools/dist_train.sh', SEG_CONFIG, '2'],
        '--resume': [sys.executable, 'tools/train.py', SEG_CONFIG, '--resume'],
    }[way] + ['--work-dir', str(work), *seg_data]
    if way == 'load_from':
        args.append(f'load_from={evil}')
    if way == '--resume':  # the work dir's last checkpoint is the hostile file
        work.mkdir()
        (work / 'last_checkpoint').write_text(str(evil))
    env = {'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD': '1'} if old_default else {}
    line = _one_line_error(args, f'{evil} also holds objects whose loading could run code',
                           **env)
    assert line.endswith('refused')
    assert not (tmp_path / 'ran').exists()
    assert not list(work.glob('*.pth')), 'a refused run must not train or save'


@pytest.mark.slow
def test_checkpoint_without_the_models_weights_is_refused(seg_data, tmp_path):
    foreign = tmp_path / 'foreign.pth'
    torch.save({'state_dict': {'classifier.weight': torch.zeros(3, 2)}}, foreign)
    _one_line_error([sys.executable, 'tools/test.py', SEG_CONFIG, str(foreign),
                     '--work-dir', str(tmp_path / 'work'), *seg_data],
                    f"expected the weights of the EncoderDecoder this config builds (such as "
                    f"'auxiliary_head.conv_seg.bias') in {foreign}, found 1 tensors, none of "
                    f"them the model's (such as 'classifier.weight')")


@pytest.mark.slow
def test_two_single_node_runs_at_once_both_train(seg_data, tmp_path):
    short = ['train_cfg.max_iters=2', 'train_cfg.val_interval=10',
             'default_hooks.checkpoint.interval=10', 'default_hooks.logger.interval=1']
    runs = [_start(['tools/dist_train.sh', SEG_CONFIG, '2', '--work-dir',
                    str(tmp_path / f'work{i}'), *seg_data, *short]) for i in range(2)]
    for status, stdout, stderr in map(_finish, runs):
        assert status == 0, stderr[-3000:]
        assert 'Iter(train) [2/2]' in stdout + stderr


@pytest.mark.slow
def test_console_shows_progress_and_choices_not_dumps(tmp_path):
    """The detection recipe's config dump alone is ~865 lines and the optimizer's
    per-parameter options ~230: both go to the log file only."""
    root = write_coco(tmp_path / 'coco', num_train=8, num_val=4, size=64)
    classes = ','.join(sorted(SHAPE_CATEGORIES, key=COCO_CATEGORY_NAMES.index))
    options = [f'{split}_dataloader.dataset.{key}'
               for split in ('train', 'val', 'test')
               for key in (f'data_root={root}/', f'metainfo.classes=({classes})')]
    options += [f'{kind}_evaluator.ann_file={root}/annotations/instances_val2017.json'
                for kind in ('val', 'test')]
    options += ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                'train_dataloader.batch_size=2']
    work = tmp_path / 'work'
    status, stdout, stderr = _finish(_start(['tools/dist_train.sh', DET_CONFIG, '2',
                                             '--work-dir', str(work), '--cfg-options',
                                             *options]))
    assert status == 0, stderr[-3000:]
    console = (stderr + stdout).splitlines()
    first = next(i for i, line in enumerate(console) if 'Epoch(train)' in line)
    assert first < 100, '\n'.join(console[:first])
    assert not any('paramwise_options' in line or line.startswith('Config:') or
                   'Warning' in line for line in console), '\n'.join(console)
    assert not any(' - ERROR - ' in line for line in console), '\n'.join(console)
    log = next(work.glob('*/*.log')).read_text()
    assert 'Config:' in log and 'paramwise_options' in log and 'System environment' in log
