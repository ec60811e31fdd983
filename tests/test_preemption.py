"""Killed and resumed, a 2-process run ends bit-identical to the uninterrupted one.

tools/dist_train.sh on 2 gloo CPU processes, the real Runner, the demo segmentation
config (iteration-based) and the demo detection config (epoch-based, checkpoints every
iteration) on the synthetic data. Each run is killed with SIGKILL of its whole process
tree at moments drawn at random (seeded, printed): inside training iterations, while a
checkpoint is being written, during a validation and during the final one; once only
the launcher's process group is killed and the workers must die with it. Every kill
is followed by ``--resume``. The final weights and the final metric must equal the
uninterrupted run's exactly.
"""
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from helpers import free_port
from swin_mm.checkpoints import read_checkpoint
from swin_mm_dev.synthetic import write_ade20k, write_coco
from swin_mm_dev.synthetic.coco import COCO_CATEGORY_NAMES, SHAPE_CATEGORIES

REPO = Path(__file__).resolve().parents[1]
SEG_CONFIG = REPO / 'configs/demo/upernet_swin_synthetic_ade20k.py'
DET_CONFIG = REPO / 'configs/demo/cascade_mask_rcnn_swin_synthetic_coco.py'
SEED = int(os.environ.get('SWIN_MM_KILL_SEED', 0))


def _descendants(root: int):
    """Every process below `root`, from /proc."""
    children = {}
    for entry in filter(str.isdigit, os.listdir('/proc')):
        try:
            parent = int(Path(f'/proc/{entry}/stat').read_text().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


class Launch:
    """One tools/dist_train.sh run in a session of its own, its output read live."""

    def __init__(self, config, work_dir, options, resume):
        args = ['tools/dist_train.sh', str(config), '2', '--work-dir', str(work_dir),
                *(['--resume'] if resume else []), '--cfg-options', *options]
        env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
                   PYTHONUNBUFFERED='1')
        self.work_dir = Path(work_dir)
        self.stale = set(os.listdir(work_dir)) if self.work_dir.is_dir() else set()
        self.process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return ''.join(self.lines)

    def wait_for(self, moment: str, train_line, timeout: float = 240) -> bool:
        """Until `moment` comes ('train N' or 'launcher N': ``train_line(N)``, the log
        line of iteration N; 'save': a checkpoint file being written; 'val': a
        validation's first batch; 'final': the first batch of the validation after the
        last iteration); False if the run ends first."""
        kind, _, iteration = moment.partition(' ')
        pattern = (r'(Iter|Epoch)\(val\) (\[\d+\])?\[1/' if kind in ('val', 'final') else
                   re.escape(train_line(int(iteration or 0))))
        last_train = train_line(-1)
        deadline = time.time() + timeout
        while time.time() < deadline and self.process.poll() is None:
            if kind == 'save':
                if any('.partial.' in name and name.endswith('.pth') and name not in self.stale
                       for name in os.listdir(self.work_dir)):
                    return True
            else:
                seen = self.log
                if kind == 'final':
                    seen = seen[seen.index(last_train):] if last_train in seen else ''
                if re.search(pattern, seen):
                    return True
            time.sleep(0.002)
        return False

    def kill_tree(self) -> None:
        """SIGKILL every process of the run at once, as a lost node would lose them."""
        pids = [self.process.pid, *_descendants(self.process.pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        assert self._gone(pids)

    def kill_launcher(self) -> None:
        """SIGKILL only the launcher's process group: the workers must stop by themselves."""
        workers = _descendants(self.process.pid)
        assert workers, 'the launcher should have started its workers'
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        assert self._gone(workers, within=15), \
            f'workers {[p for p in workers if _alive(p)]} outlived their launcher'

    @staticmethod
    def _gone(pids, within: float = 10) -> bool:
        deadline = time.time() + within
        while any(_alive(pid) for pid in pids):
            if time.time() > deadline:
                for pid in pids:  # do not leave them to the next test
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                return False
            time.sleep(0.05)
        return True

    def finish(self, timeout: float = 300) -> str:
        self.process.wait(timeout)
        self.reader.join()
        assert self.process.returncode == 0, self.log[-3000:]
        return self.log


def _killed_and_resumed(config, work_dir, options, moments, train_line):
    """Run, killing at each moment in turn and resuming; the log of the run that ends."""
    rng = random.Random(SEED)
    resume = False
    for moment in moments:
        launch = Launch(config, work_dir, options, resume)
        assert launch.wait_for(moment, train_line), \
            f'the run ended before "{moment}":\n' + launch.log[-3000:]
        if moment.startswith(('train', 'launcher')):
            time.sleep(rng.uniform(0, 0.3))  # anywhere in what follows the log line
        if moment.startswith('launcher'):
            launch.kill_launcher()
        else:
            launch.kill_tree()
        left = sorted(os.listdir(work_dir))
        print(f'killed at {moment}; work dir: {left}')
        if moment == 'save':
            assert any('.partial.' in name for name in left), 'the kill came after the save'
        resume = True
    return Launch(config, work_dir, options, resume=True).finish()


def _final_weights(path):
    return read_checkpoint(str(path))['state_dict']


def _assert_same_run(reference_dir, resumed_dir, checkpoint, reference_log, resumed_log,
                     metric):
    ours, theirs = _final_weights(resumed_dir / checkpoint), _final_weights(
        reference_dir / checkpoint)
    assert ours.keys() == theirs.keys()
    different = [key for key in ours if not torch.equal(ours[key], theirs[key])]
    assert not different, f'{len(different)} tensors differ, e.g. {different[:3]}'
    assert re.findall(metric, resumed_log)[-1] == re.findall(metric, reference_log)[-1]


def _moments(rng, validated: int, last: int):
    """Five kills: in a random training iteration before the validation after
    iteration `validated`, while a checkpoint is written, in that validation, in a
    random iteration after it (killing only the launcher), in the final validation."""
    early = rng.randint(1, validated - 1)
    later = rng.randint(validated + 1, last - 1)
    return [f'train {early}', 'save', 'val', f'launcher {later}', 'final']


@pytest.mark.slow
def test_segmentation_killed_five_times_ends_bit_identical(tmp_path):
    root = write_ade20k(tmp_path / 'data', num_train=8, num_val=4, size=64)
    iterations = 8
    options = [*[f'{split}_dataloader.dataset.data_root={root}'
                 for split in ('train', 'val', 'test')],
               f'train_cfg.max_iters={iterations}', 'train_cfg.val_interval=4',
               'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=2',
               'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2']
    reference = Launch(SEG_CONFIG, tmp_path / 'reference', options, False).finish()
    moments = _moments(random.Random(SEED), 4, iterations)
    print('kill moments:', moments, 'seed', SEED)
    log = _killed_and_resumed(SEG_CONFIG, tmp_path / 'killed', options, moments,
                              lambda n: f'Iter(train) [{n % (iterations + 1)}/{iterations}]')
    assert 'Advance dataloader' not in log
    assert 'did not finish before the run stopped: running it now' in log
    _assert_same_run(tmp_path / 'reference', tmp_path / 'killed', f'iter_{iterations}.pth',
                     reference, log, r'Iter\(val\) \[\d+/\d+\]\s+(aAcc: .*?)\s+data_time')


@pytest.mark.slow
def test_detection_killed_five_times_ends_bit_identical(tmp_path):
    """Epoch-based: 3 epochs of 2 iterations, checkpoints every iteration (so resuming
    lands inside epochs too), validation after epochs 2 and 3 with mmdet's CocoMetric.
    The kill in the last validation comes after the checkpoint inside epoch 3, so
    resuming finishes that epoch with no batch left and then validates."""
    root = write_coco(tmp_path / 'coco', num_train=8, num_val=4, size=64)
    classes = ','.join(sorted(SHAPE_CATEGORIES, key=COCO_CATEGORY_NAMES.index))
    epochs, per_epoch = 3, 2  # 8 images / (2 processes x 2 images)
    options = [*[f'{split}_dataloader.dataset.{key}={value}' for split in ('train', 'val', 'test')
                 for key, value in [('data_root', f'{root}/'), ('metainfo.classes', f'({classes})')]],
               *[f'{kind}_evaluator.ann_file={root}/annotations/instances_val2017.json'
                 for kind in ('val', 'test')],
               f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=2',
               'default_hooks.checkpoint.by_epoch=False', 'default_hooks.checkpoint.interval=1',
               'default_hooks.checkpoint.max_keep_ckpts=2', 'default_hooks.logger.interval=1',
               'train_dataloader.batch_size=2']
    reference = Launch(DET_CONFIG, tmp_path / 'reference', options, False).finish()
    iterations = epochs * per_epoch
    moments = _moments(random.Random(SEED + 1), 2 * per_epoch, iterations)
    print('kill moments:', moments, 'seed', SEED + 1)

    def train_line(n):
        n = n % (iterations + 1)
        return f'Epoch(train) [{(n - 1) // per_epoch + 1}][{(n - 1) % per_epoch + 1}/{per_epoch}]'

    log = _killed_and_resumed(DET_CONFIG, tmp_path / 'killed', options, moments, train_line)
    _assert_same_run(tmp_path / 'reference', tmp_path / 'killed', f'iter_{iterations}.pth',
                     reference, log, r'(coco/bbox_mAP: .*?)\s+data_time')
