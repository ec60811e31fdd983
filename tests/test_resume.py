"""Resumable training in one process (the quick tier; the 2-process kill-and-resume
runs are in test_preemption.py): the real Runner on the demo segmentation config,
resumed at iteration N, loads no sample before N and ends bit-identical; the parts
(sampler positions, per-sample seeding, random state, checkpoint choice, the launcher
guard) each on their own."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from mmseg.datasets import BaseSegDataset  # the demo config's dataset

from swin_mm.checkpoints import read_checkpoint
from swin_mm_dev.resume import (ResumableSampler, SampleIndex, SampleSeededDataset,
                                checkpoint_to_resume, prepare_resumable_run)
from swin_mm_dev.resume.launcher import LAUNCHER_PID
from swin_mm_dev.resume.random_state import rng_state, set_rng_state
from swin_mm_dev.runner_setup import build_runner, fit_to_machine, load_config
from swin_mm_dev.synthetic import write_ade20k

REPO = Path(__file__).resolve().parents[1]
SEG_CONFIG = REPO / 'configs/demo/upernet_swin_synthetic_ade20k.py'


def _train(work_dir, root, name, **options):
    cfg = load_config(str(SEG_CONFIG), str(work_dir), {
        **{f'{split}_dataloader.dataset.data_root': str(root)
           for split in ('train', 'val', 'test')},
        'train_cfg.max_iters': 2, 'train_cfg.val_begin': 100,  # no validation
        'default_hooks.checkpoint.interval': 1, 'default_hooks.checkpoint.max_keep_ckpts': 2,
        'train_dataloader.batch_size': 2, 'model.backbone.depths': (1, 1, 1, 1),
        'model.decode_head.channels': 16, 'model.auxiliary_head.channels': 16, **options})
    cfg.experiment_name = cfg.visualizer.name = name  # one visualizer per Runner here
    changes = prepare_resumable_run(cfg) + fit_to_machine(cfg, training=True)
    build_runner(cfg, changes).train()


@pytest.mark.parametrize('workers', [0, pytest.param(2, marks=pytest.mark.slow)])
def test_resumed_at_iteration_n_loads_nothing_before_it_and_ends_bit_identical(
        workers, tmp_path, monkeypatch, log_lines):
    """The resumed run loads in the training process (so the calls can be counted); the
    uninterrupted one there too, or in 2 dataloader workers: a sample's augmentation is
    the same wherever it is loaded."""
    root = write_ade20k(tmp_path / 'data', num_train=6, num_val=2, size=64)
    _train(tmp_path / 'whole', root, f'whole{workers}',
           **{'train_dataloader.num_workers': workers})
    loaded = []
    original = BaseSegDataset.__getitem__
    monkeypatch.setattr(BaseSegDataset, '__getitem__',
                        lambda self, index: loaded.append(index) or original(self, index))
    _train(tmp_path / 'resumed', root, f'resumed{workers}', resume=True,
           load_from=str(tmp_path / 'whole/iter_1.pth'))
    assert len(loaded) == 2, 'the 2 samples of iteration 2, and nothing else'
    assert not any('Advance dataloader' in line for line in log_lines.lines)
    whole = read_checkpoint(str(tmp_path / 'whole/iter_2.pth'))
    resumed = read_checkpoint(str(tmp_path / 'resumed/iter_2.pth'))
    assert all(torch.equal(resumed['state_dict'][key], value)
               for key, value in whole['state_dict'].items())


def test_sampler_positions_without_replaying_and_seeds_each_sample():
    sampler = ResumableSampler(range(10), seed=3, infinite=True)
    stream = [next(it) for it in [iter(sampler)] for _ in range(35)]
    sampler.start_at(23)  # the 4th pass (10 per pass), 3 in
    assert list(zip(range(12), iter(sampler)))[-1][1] == stream[34]
    assert [(int(i), i.pass_index) for i in stream[20:23]] == \
        [(int(i), 2) for i in sampler.pass_indices(2)[:3]]
    assert sorted(stream[10:20]) == list(range(10)) and stream[:10] != stream[10:20]

    class Draws:  # a pipeline that only draws from the three generators
        def __getitem__(self, index):
            return random.random(), np.random.rand(), torch.rand(1).item()

        def __len__(self):
            return 10

    dataset = SampleSeededDataset(Draws())
    first = dataset[stream[4]]
    before = rng_state()
    torch.rand(5), np.random.rand(3)  # another history, same sample: same draws
    assert dataset[SampleIndex(int(stream[4]), 3, stream[4].pass_index)] == first
    assert dataset[stream[14]] != first  # the same index in another pass
    set_rng_state(before)
    assert dataset[stream[4]] == first


def test_random_state_round_trip_through_a_checkpoint_file(tmp_path):
    torch.save({'rng': rng_state()}, tmp_path / 'state.pth')
    expected = (random.random(), np.random.rand(), np.random.randn(), torch.rand(2))
    torch.rand(3), random.random(), np.random.randn()
    set_rng_state(read_checkpoint(str(tmp_path / 'state.pth'))['rng'])
    again = (random.random(), np.random.rand(), np.random.randn(), torch.rand(2))
    assert again[:3] == expected[:3] and torch.equal(again[3], expected[3])


def test_checkpoint_to_resume_uses_a_whole_newer_file_and_sets_a_torn_one_aside(tmp_path):
    def save(name, age):
        torch.save({'meta': {}, 'state_dict': {'w': torch.ones(4)}}, tmp_path / name)
        os.utime(tmp_path / name, (time.time() - age,) * 2)

    save('iter_2.pth', 30)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    save('iter_3.pth', 20)
    save('iter_4.pth', 10)
    with open(tmp_path / 'iter_4.pth', 'r+b') as file:
        file.truncate(100)  # a file some other writer tore
    (tmp_path / '.iter_5.partial.x1y2.pth').write_bytes(b'PK')
    assert checkpoint_to_resume(str(tmp_path), main_process=False)[0] == \
        str(tmp_path / 'iter_3.pth')
    assert (tmp_path / 'iter_4.pth').exists()  # only the main process changes the dir
    path, lines = checkpoint_to_resume(str(tmp_path))
    assert path == str(tmp_path / 'iter_3.pth') and len(lines) == 3
    assert lines[0] == f'Removed {tmp_path}/.iter_5.partial.x1y2.pth: a save that did not finish'
    assert lines[1].startswith(f'{tmp_path}/iter_4.pth is newer than last_checkpoint '
                               f'({tmp_path}/iter_2.pth) but does not read back whole (')
    assert lines[1].endswith(f'): set aside as {tmp_path}/iter_4.pth.unreadable')
    assert lines[2].endswith('reads back whole: resuming from it')
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth', 'iter_3.pth', 'iter_4.pth.unreadable',
                                            'last_checkpoint']


# The guard module alone (importing the package would import mmengine: seconds).
_WORKER = ('import importlib.util as u, os, time; s = u.spec_from_file_location("l", '
           f'"{REPO}/swin_mm_dev/resume/launcher.py"); m = u.module_from_spec(s); '
           's.loader.exec_module(m); print(os.getpid(), m.die_with_launcher(), flush=True); '
           'time.sleep(60)')


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG is Linux')
def test_a_worker_dies_with_its_launcher():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    orphan = subprocess.run([sys.executable, '-c', _WORKER], env={**env, LAUNCHER_PID: '1'},
                            capture_output=True, text=True, timeout=60)
    assert orphan.returncode == 1 and orphan.stderr.startswith(
        'error: the launcher (process 1) that started this worker is gone; stopping')
    launcher = subprocess.Popen(  # a launcher that starts the worker and waits
        [sys.executable, '-c', 'import os, subprocess, sys; os.environ[sys.argv[1]] = '
         'str(os.getpid()); subprocess.run([sys.executable, "-c", sys.argv[2]])',
         LAUNCHER_PID, _WORKER], env=env, stdout=subprocess.PIPE, text=True)
    worker, armed = launcher.stdout.readline().split()
    assert armed == 'True'
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.time() + 10
    while Path(f'/proc/{worker}').exists() and time.time() < deadline:
        time.sleep(0.05)
    assert not Path(f'/proc/{worker}').exists(), 'the worker outlived its launcher'


@pytest.mark.parametrize('name', sorted(p.name for p in (REPO / 'configs').glob('*.py')))
def test_every_recipe_config_trains_resumably(name):
    cfg = load_config(str(REPO / 'configs' / name))
    loop = cfg.train_cfg.type
    [line] = prepare_resumable_run(cfg)
    assert line.startswith(f'resumable training (swin_mm_dev.resume): {loop} -> Resumable{loop}')
    assert cfg.train_dataloader.sampler.infinite == (loop == 'IterBasedTrainLoop')
    assert cfg.default_hooks.checkpoint.type == 'ResumableCheckpointHook'
