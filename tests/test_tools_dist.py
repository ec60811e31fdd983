"""tools/dist_train.sh, dist_test.sh and test.py --tta for real: 2 gloo CPU processes,
mmengine Runner, mmseg/mmdet datasets and metrics, on tiny synthetic data."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from helpers import free_port
from swin_mm_dev.runner_setup import (SetupError, fit_to_machine, load_config,
                                      skip_pretrained_init_when_loading, use_tta)
from swin_mm_dev.synthetic import write_ade20k, write_coco
from swin_mm_dev.synthetic.coco import COCO_CATEGORY_NAMES, SHAPE_CATEGORIES

REPO = Path(__file__).resolve().parents[1]
SEG_CONFIG = REPO / 'configs/demo/upernet_swin_synthetic_ade20k.py'
DET_CONFIG = REPO / 'configs/demo/cascade_mask_rcnn_swin_synthetic_coco.py'


def _run(args, timeout=300, status=0, **env) -> str:
    env = dict(os.environ, PYTHON=sys.executable, **env)  # one node: a free port by itself
    out = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=timeout)
    log = out.stdout + out.stderr
    assert out.returncode == status, log[-3000:]
    return out.stderr if status else log


def _metrics(log: str, loop: str) -> str:
    """The metric line of the last `loop` ('val' or 'test') in a log, timings left out."""
    line = re.findall(rf'Iter\({loop}\) \[\d+/\d+\]\s+(aAcc: .*?)\s+data_time', log)[-1]
    return line


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
    run_log = next(work_dir.glob('*/*.log')).read_text()  # the environment: log file only
    assert re.search(r"'world_size': 2|world_size: 2|Distributed training: True", run_log)
    assert (work_dir / 'iter_2.pth').exists() and (work_dir / 'iter_4.pth').exists()
    assert re.search(r'mIoU: \d+\.\d+', log)
    # The per-class table names the synthetic classes, not ADE20K's first five.
    assert re.search(r'\|\s+striped_hexagon\s+\|', log)
    assert not re.search(r'\|\s+wall\s+\|', log)


@pytest.mark.slow
def test_resume_then_dist_test_scores_what_validation_scored(seg_run):
    """Validation at the end of the resumed run and dist_test on its checkpoint see the
    same weights and BN statistics, so they give the same numbers (per-process BN
    statistics made them differ before SyncBatchNormStatsHook)."""
    work_dir, options, _ = seg_run
    resumed = [o.replace('max_iters=4', 'max_iters=6') for o in options]
    log = _run(['tools/dist_train.sh', str(SEG_CONFIG), '2', '--work-dir', str(work_dir),
                '--resume', *resumed])
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [1/6]' not in log
    assert (work_dir / 'iter_6.pth').exists()
    validated = _metrics(log, 'val')
    log = _run(['tools/dist_test.sh', str(SEG_CONFIG), str(work_dir / 'iter_6.pth'), '2',
                '--work-dir', str(work_dir / 'test'), *options])
    assert 'Load checkpoint from' in log
    assert re.search(r'Iter\(test\) \[2/2\].*mIoU: \d+\.\d+', log)  # 4 images, 2 processes
    assert _metrics(log, 'test') == validated


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
    # The shapes' COCO categories, in the file's (COCO id) order.
    classes = ','.join(sorted(SHAPE_CATEGORIES, key=COCO_CATEGORY_NAMES.index))
    log = _run(['tools/dist_train.sh', str(DET_CONFIG), '2', '--work-dir',
                str(tmp_path / 'work'), '--cfg-options',
                *_data_root_options(f'{root}/', f'{root}/annotations/instances_val2017.json'),
                *[f'{split}_dataloader.dataset.metainfo.classes=({classes})'
                  for split in ('train', 'val', 'test')],
                'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                'train_dataloader.batch_size=2'])
    assert 'Epoch(train) [1][2/2]' in log  # 8 images / (2 processes x batch 2)
    assert 'Evaluating bbox' in log and 'Evaluating segm' in log
    assert re.search(r'coco/bbox_mAP: -?\d\.\d+ .*coco/segm_mAP: -?\d\.\d+', log)
    assert (tmp_path / 'work/epoch_1.pth').exists()


_RELEASE_PROBE = """
import os, sys, torch, torch.distributed as dist
from swin_mm_dev.runner_setup import process_group_released
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


@pytest.mark.slow
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


def test_cpu_adaptation_of_a_recipe_config(monkeypatch):
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    cfg = load_config(str(REPO / 'configs/cascade_mask_rcnn_swin_t_coco_3x.py'),
                      launcher='pytorch')
    changes = fit_to_machine(cfg)  # this machine has no CUDA
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert 'SyncBN' not in str(cfg.model) and "'BN'" in str(cfg.model)
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.custom_hooks[-1] == dict(type='SyncBatchNormStatsHook')
    assert sum(c.startswith('no CUDA') for c in changes) == 3
    assert cfg.work_dir == os.path.join('work_dirs', 'cascade_mask_rcnn_swin_t_coco_3x')


def test_dataloader_workers_fit_the_machine(monkeypatch):
    """As many workers per process as torch's DataLoader finds reasonable here, so it
    does not warn (2 of the recipes' 4 workers on 2 cores; 1 each for 2 processes)."""
    import warnings
    from torch.utils.data import DataLoader
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    cfg = load_config(str(REPO / 'configs/upernet_swin_t_ade20k.py'), launcher='pytorch')
    changes = fit_to_machine(cfg)
    workers = cfg.train_dataloader.num_workers
    assert workers == max(1, min(4, cores // 2))
    if cores // 2 < 4:
        assert f'train_dataloader.num_workers 4 -> {workers}' in ' '.join(changes)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        DataLoader(range(4), num_workers=workers).check_worker_number_rationality()


def test_batch_one_upernet_on_cpu_is_refused_up_front():
    cfg = load_config(str(REPO / 'configs/upernet_swin_t_ade20k.py'),
                      cfg_options={'train_dataloader.batch_size': 1})
    with pytest.raises(SetupError, match='batch_size=1 per process cannot train on CPU'):
        fit_to_machine(cfg, training=True)
    fit_to_machine(load_config(str(REPO / 'configs/upernet_swin_t_ade20k.py'),
                               cfg_options={'test_dataloader.batch_size': 1}), training=True)


def test_loading_a_checkpoint_skips_the_pretrained_init(tmp_path):
    config = str(REPO / 'configs/upernet_swin_t_ade20k.py')
    cfg = load_config(config, str(tmp_path))
    cfg.resume = True  # but nothing to resume from yet: the ImageNet init stays
    assert skip_pretrained_init_when_loading(cfg) == []
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    (tmp_path / 'iter_8.pth').touch()
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8.pth'))
    url = cfg.model.backbone.init_cfg.checkpoint
    assert skip_pretrained_init_when_loading(cfg) == [
        f'{tmp_path}/iter_8.pth replaces the weights: model.backbone.init_cfg (Pretrained '
        f'{url}) skipped']
    assert cfg.model.backbone.init_cfg is None
    cfg = load_config(config, cfg_options={'load_from': 'converted.pth'})
    assert len(skip_pretrained_init_when_loading(cfg)) == 1 and not cfg.model.backbone.init_cfg


@pytest.mark.parametrize('tool,args,message', [
    ('test.py', [str(DET_CONFIG), 'epoch_1.pth', '--tta', '--cfg-options', 'tta_model=None'],
     'error: --tta expects tta_model and tta_pipeline in the config, found no tta_model'),
    pytest.param('train.py', [str(SEG_CONFIG), '--amp'], "error: --amp needs a GPU: mmengine's "
                 'AmpOptimWrapper autocasts on CUDA, NPU, MLU or MUSA devices only',
                 marks=pytest.mark.slow),
    pytest.param('train.py', ['configs/upernet_swin_t_ade20k.py', '--cfg-options',
                              'train_dataloader.batch_size=1'],
                 'error: train_dataloader.batch_size=1 per process cannot train on CPU',
                 marks=pytest.mark.slow),
])
def test_tool_errors_are_one_line(tool, args, message):
    if '--amp' in args and __import__('torch').cuda.is_available():
        pytest.skip('--amp works where there is CUDA')
    stderr = _run([sys.executable, f'tools/{tool}', *args], status=2)
    assert stderr.startswith(message) and stderr.count('\n') == 1, stderr


@pytest.mark.slow
def test_offline_init_cfg_url_is_one_line_naming_it_and_the_fix(tmp_path):
    root = write_ade20k(tmp_path / 'data', num_train=2, num_val=1, size=64)
    url = 'http://127.0.0.1:9/swin_tiny_patch4_window7_224.pth'  # discard port: refused
    stderr = _run([sys.executable, 'tools/train.py', 'configs/upernet_swin_t_ade20k.py',
                   '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                   *_data_root_options(str(root)), f'model.backbone.init_cfg.checkpoint={url}'],
                  status=2, TORCH_HOME=str(tmp_path / 'torch'), no_proxy='*')
    ours = [line for line in stderr.splitlines() if 'error' in line.lower()]  # not mmseg's
    assert len(ours) == 1 and ours[0].startswith(f'error: could not download {url} ('), stderr
    assert 'set model.backbone.init_cfg.checkpoint to the local file' in ours[0]


def test_tta_wraps_the_model_and_swaps_the_pipeline():
    cfg = load_config(str(REPO / 'configs/upernet_swin_t_ade20k.py'))
    model = cfg.model
    use_tta(cfg)
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module == model
    assert cfg.test_dataloader.dataset.pipeline[1].type == 'TestTimeAug'


def test_tta_without_tta_settings_is_a_clear_error(tmp_path):
    config = tmp_path / 'cfg.py'
    config.write_text("model = dict(type='X')\ntest_dataloader = dict(dataset=dict())\n")
    with pytest.raises(SetupError, match='expects tta_model and tta_pipeline in the config, '
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
