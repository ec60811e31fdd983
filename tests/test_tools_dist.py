"""tools/dist_train.sh, dist_test.sh and test.py --tta for real: 2 gloo CPU processes,
mmengine Runner, mmseg/mmdet datasets and metrics, on tiny synthetic data."""
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from swin_mm.runner_setup import fit_to_machine, load_config, use_tta
from swin_mm.synthetic import write_ade20k, write_coco

REPO = Path(__file__).resolve().parents[1]
SEG_CONFIG = REPO / 'configs/demo/upernet_swin_synthetic_ade20k.py'
DET_CONFIG = REPO / 'configs/demo/cascade_mask_rcnn_swin_synthetic_coco.py'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(args, timeout=300) -> str:
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()))
    out = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=timeout)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    return log


def _data_root_options(root: str, evaluator_ann: str = None):
    options = [f'{split}_dataloader.dataset.data_root={root}'
               for split in ('train', 'val', 'test')]
    if evaluator_ann:
        options += [f'{kind}_evaluator.ann_file={evaluator_ann}' for kind in ('val', 'test')]
    return options


@pytest.fixture(scope='module')
def seg_run(tmp_path_factory):
    """4 iterations of the demo config on 2 gloo processes, checkpoint at 2 and 4."""
    tmp = tmp_path_factory.mktemp('seg')
    root = write_ade20k(tmp / 'data', num_train=8, num_val=4, size=64)
    options = ['--cfg-options', *_data_root_options(str(root)), 'train_cfg.max_iters=4',
               'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=2',
               'default_hooks.checkpoint.max_keep_ckpts=3', 'default_hooks.logger.interval=1',
               'train_dataloader.batch_size=2']
    work_dir = tmp / 'work'
    log = _run(['tools/dist_train.sh', str(SEG_CONFIG), '2', '--work-dir', str(work_dir),
                *options])
    return work_dir, options, log


@pytest.mark.slow
def test_dist_train_on_two_gloo_processes(seg_run):
    work_dir, _, log = seg_run
    assert 'no CUDA: distributed backend nccl -> gloo' in log
    assert 'SyncBN norm_cfg(s) -> BN' in log
    assert re.search(r"'world_size': 2|world_size: 2|Distributed training: True", log)
    assert (work_dir / 'iter_2.pth').exists() and (work_dir / 'iter_4.pth').exists()
    assert re.search(r'mIoU: \d+\.\d+', log)


@pytest.mark.slow
def test_resume_then_dist_test(seg_run):
    work_dir, options, _ = seg_run
    resumed = [o.replace('max_iters=4', 'max_iters=6') for o in options]
    log = _run(['tools/dist_train.sh', str(SEG_CONFIG), '2', '--work-dir', str(work_dir),
                '--resume', *resumed])
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [1/6]' not in log
    assert (work_dir / 'iter_6.pth').exists()
    log = _run(['tools/dist_test.sh', str(SEG_CONFIG), str(work_dir / 'iter_6.pth'), '2',
                '--work-dir', str(work_dir / 'test'), *options])
    assert 'Load checkpoint from' in log
    assert re.search(r'Iter\(test\) \[2/2\].*mIoU: \d+\.\d+', log)  # 4 images, 2 processes


@pytest.mark.slow
def test_tta_on_the_segmentation_checkpoint(seg_run):
    work_dir, options, _ = seg_run
    log = _run([sys.executable, 'tools/test.py', str(SEG_CONFIG), str(work_dir / 'iter_4.pth'),
                '--tta', '--work-dir', str(work_dir / 'tta'), *options])
    assert 'SegTTAModel' in log
    assert re.search(r'Iter\(test\) \[4/4\].*mIoU: \d+\.\d+', log)


@pytest.mark.slow
def test_detection_trains_and_evaluates_with_coco_metric(tmp_path):
    root = write_coco(tmp_path / 'coco', num_train=8, num_val=4, size=64)
    log = _run(['tools/dist_train.sh', str(DET_CONFIG), '2', '--work-dir',
                str(tmp_path / 'work'), '--cfg-options',
                *_data_root_options(f'{root}/', f'{root}/annotations/instances_val2017.json')])
    assert 'Epoch(train) [1][2/2]' in log  # 8 images / (2 processes x batch 2)
    assert 'Evaluating bbox' in log and 'Evaluating segm' in log
    assert re.search(r'coco/bbox_mAP: -?\d\.\d+ .*coco/segm_mAP: -?\d\.\d+', log)
    assert (tmp_path / 'work/epoch_1.pth').exists()


_RELEASE_PROBE = """
import os, sys, torch, torch.distributed as dist
from swin_mm.runner_setup import process_group_released
threads = lambda: len(os.listdir('/proc/self/task'))
torch.set_num_threads(1)
before = threads()
with process_group_released():
    dist.init_process_group('gloo', init_method='file://' + sys.argv[1], rank=0, world_size=1)
    runner = dict(model=torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2)))
    runner['self'] = runner  # a finished Runner sits in cycles like this one
    dist.all_reduce(torch.ones(1))
    during = threads()
    del runner
print(before, during, threads())
"""


def test_process_group_release_joins_the_gloo_threads(tmp_path):
    """Gloo threads still alive at interpreter teardown abort a finished run ("terminate
    called without an active exception"), so the tools must free the group before exit
    even while a reference cycle holds the DDP model."""
    out = subprocess.run([sys.executable, '-c', _RELEASE_PROBE, str(tmp_path / 'store')],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    before, during, after = map(int, out.stdout.split())
    assert during > before, 'the probe should have started gloo threads'
    assert after == before, f'{during - after} of {during - before} gloo threads left running'


def test_cpu_adaptation_of_a_recipe_config():
    cfg = load_config(str(REPO / 'configs/cascade_mask_rcnn_swin_t_coco_3x.py'),
                      launcher='pytorch')
    changes = fit_to_machine(cfg)  # this machine has no CUDA
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert 'SyncBN' not in str(cfg.model) and "'BN'" in str(cfg.model)
    assert cfg.model_wrapper_cfg.device_ids is None
    assert [c.split(':')[0] for c in changes] == ['no CUDA', 'no CUDA']
    assert cfg.work_dir == os.path.join('work_dirs', 'cascade_mask_rcnn_swin_t_coco_3x')


def test_tta_wraps_the_model_and_swaps_the_pipeline():
    cfg = load_config(str(REPO / 'configs/upernet_swin_t_ade20k.py'))
    model = cfg.model
    use_tta(cfg)
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module == model
    assert cfg.test_dataloader.dataset.pipeline[1].type == 'TestTimeAug'


def test_tta_without_tta_settings_is_a_clear_error(tmp_path):
    config = tmp_path / 'cfg.py'
    config.write_text("model = dict(type='X')\ntest_dataloader = dict(dataset=dict())\n")
    with pytest.raises(KeyError, match='expects tta_model and tta_pipeline in the config, '
                                       'found no tta_model and no tta_pipeline'):
        use_tta(load_config(str(config)))


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='expected a config file, found nothing at'):
        load_config(str(tmp_path / 'nope.py'))


def test_demo_configs_inherit_the_recipes():
    seg = Config.fromfile(str(SEG_CONFIG))
    det = Config.fromfile(str(DET_CONFIG))
    assert seg.model.auxiliary_head.loss_decode.loss_weight == 0.4
    assert seg.val_evaluator.type == 'IoUMetric' and seg.tta_model.type == 'SegTTAModel'
    assert seg.optim_wrapper.paramwise_cfg.custom_keys['norm'] == dict(decay_mult=0.)
    assert [h.loss_bbox.type for h in det.model.roi_head.bbox_head] == ['GIoULoss'] * 3
    assert det.val_evaluator.type == 'CocoMetric'
    assert det.val_evaluator.metric == ['bbox', 'segm']
