"""Every recipe config in configs/ runs for real on the synthetic data.

Each config trains 2 iterations, resumes (--resume) for one more, then fine-tunes one
iteration with ``load_from``, in one process and in the order mmengine's Runner works:
the tools' allow-list first, then the backbone's Pretrained init_cfg read through
``read_checkpoint``, then mmengine's own ``torch.load`` of its checkpoint. Real mmengine Runner, mmdet/mmseg datasets,
pipelines, heads and metrics (CocoMetric, IoUMetric). The data sits where the configs
look (``data/coco``, ``data/ade``), so no data path is overridden; the test-side
override shrinks image sizes 8x, proposal and RoI counts in proportion, the backbone
to a small SwinBackbone (its window, pretraining size and HTC++ global attention stay)
and the detection heads' widths.
"""
import glob
import importlib.util
import os
import re
from pathlib import Path

import pytest
import torch

from helpers import SMALL
from swin_layouts import official_state_dict
from swin_mm.checkpoints import read_checkpoint
from swin_mm_dev.runner_setup import build_runner, fit_to_machine, load_config
from swin_mm_dev.synthetic import write_ade20k, write_coco

REPO = Path(__file__).resolve().parents[1]

DETECTION = ['mask_rcnn_swin_t_coco_1x.py', 'mask_rcnn_swin_t_coco_3x.py',
             'mask_rcnn_swin_s_coco_3x.py', 'cascade_mask_rcnn_swin_t_coco_3x.py',
             'cascade_mask_rcnn_swin_s_coco_3x.py', 'cascade_mask_rcnn_swin_b_coco_3x.py',
             'htcpp_swin_b_coco.py', 'htcpp_swin_l_coco.py']
SEGMENTATION = ['upernet_swin_t_ade20k.py', 'upernet_swin_s_ade20k.py',
                'upernet_swin_b_ade20k.py', 'upernet_swin_b_22k_ade20k_640.py',
                'upernet_swin_l_22k_ade20k_640.py']
SCALE_DOWN = 8
# One config per family runs the whole cycle: train, TTA test, --resume, load_from. Its
# siblings share its model, data, TTA and runtime settings (by inheritance, S from T and B
# from S, or the same _base_ files, as HTC++ L with B's) and differ in the backbone's size,
# its checkpoint and, for HTC++ L, the schedule's length: for them, training 2 iterations
# from their own checkpoint is what is left to show.
FULL_CYCLE = {'mask_rcnn_swin_t_coco_1x.py', 'mask_rcnn_swin_t_coco_3x.py',
              'cascade_mask_rcnn_swin_t_coco_3x.py', 'htcpp_swin_b_coco.py',
              'upernet_swin_t_ade20k.py', 'upernet_swin_b_22k_ade20k_640.py'}


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    """The synthetic COCO and ADE20K data in the configs' default data_root layout."""
    root = tmp_path_factory.mktemp('recipes')
    write_coco(root / 'data/coco', num_train=2, num_val=2, size=64)
    write_ade20k(root / 'data/ade', num_train=4, num_val=2, size=64)
    return root


def _scaled(value):
    if isinstance(value, int):
        return max(1, value // SCALE_DOWN)
    if isinstance(value, (list, tuple)):
        return type(value)(_scaled(v) for v in value)
    return value


def _scale_transforms(node) -> None:
    """Divide every transform's scale/scales/crop_size by SCALE_DOWN, in place."""
    if isinstance(node, dict):
        for key in ('scale', 'scales', 'crop_size'):
            if key in node:
                node[key] = _scaled(node[key])
        for value in node.values():
            _scale_transforms(value)
    elif isinstance(node, list):
        for item in node:
            _scale_transforms(item)


def narrow(node) -> None:
    """FPN and detection heads 256 -> 32 channels, fully connected layers 1024 -> 64, in
    place: the heads' structure stays the recipe's, their cost on CPU does not."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ('in_channels', 'out_channels', 'feat_channels', 'conv_out_channels') \
                    and value == 256:
                node[key] = 32
            elif key == 'fc_out_channels' and value == 1024:
                node[key] = 64
            else:
                narrow(value)
    elif isinstance(node, list):
        for item in node:
            narrow(item)


def shrink_for_cpu(cfg) -> None:
    """The test-side override: 1/8 image sizes, proposals and sampled RoIs cut to match,
    one image per detection batch (RoIs are the heads' batch), a small backbone and
    narrow detection heads, data loaded in-process, and every detection scored (an
    untrained 81-way classifier gives each class about 1/81, below the recipe's 0.05
    threshold), 10 per image."""
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        _scale_transforms(loader.dataset.pipeline)
        loader.update(num_workers=0, persistent_workers=False)
    if 'tta_pipeline' in cfg:
        _scale_transforms(cfg.tta_pipeline)
    model = cfg.model
    if model.data_preprocessor.get('size'):
        model.data_preprocessor.size = _scaled(model.data_preprocessor.size)
    model.backbone.update(SMALL)
    channels = [SMALL['embed_dims'] * 2 ** i for i in range(4)]
    if 'neck' in model:
        narrow(model)
        model.neck.in_channels = channels
        cfg.train_dataloader.batch_size = 1
        model.train_cfg.rpn_proposal.update(nms_pre=100, max_per_img=50)
        rcnn = model.train_cfg.rcnn
        for stage in rcnn if isinstance(rcnn, list) else [rcnn]:
            stage.sampler.num = 8
        model.test_cfg.rpn.update(nms_pre=100, max_per_img=20)
        model.test_cfg.rcnn.update(score_thr=0.0, max_per_img=10)
    else:
        model.decode_head.in_channels = channels
        model.auxiliary_head.in_channels = channels[model.auxiliary_head.in_index]


def _stand_in_pretrained(cfg, path) -> str:
    """An official-layout (microsoft/Swin-Transformer) file for the shrunk backbone, in
    place of the config's ImageNet URL."""
    backbone = cfg.model.backbone
    torch.save({'model': official_state_dict(
        SMALL['embed_dims'], SMALL['depths'], SMALL['num_heads'],
        window_size=backbone.window_size, img_size=backbone.pretrain_img_size)}, path)
    return str(path)


def _shrunk_config(name, work_dir, phase, pretrained, options):
    cfg = load_config(str(REPO / 'configs' / name), str(work_dir))
    shrink_for_cpu(cfg)
    cfg.model.backbone.init_cfg.checkpoint = pretrained
    cfg.experiment_name = f'{os.path.splitext(name)[0]}_{phase}'
    cfg.visualizer.name = cfg.experiment_name  # one visualizer per Runner in this process
    cfg.default_hooks.logger.interval = 1
    cfg.merge_from_dict(options)
    return cfg


def _newest_log(work_dir):
    logs = sorted(glob.glob(str(work_dir / '*' / '*.log')), key=os.path.getmtime)
    return open(logs[-1]).read()


def _run(name, work_dir, phase, pretrained, options):
    """One real Runner, built as tools/train.py builds it (allow-list included); its log."""
    cfg = _shrunk_config(name, work_dir, phase, pretrained, options)
    build_runner(cfg, fit_to_machine(cfg, training=True)).train()
    return _newest_log(work_dir)


def _test_with_tta(name, work_dir, pretrained, checkpoint):
    """tools/test.py CONFIG CHECKPOINT --tta on the shrunk config (written to a file, as
    a user's config would be); its log."""
    # One image, 5 proposals, 3 detections: every class of every proposal in every view
    # is a candidate here (score threshold 0), HTC++'s soft-NMS is quadratic in them, and
    # the mask heads run on every detection in every view (12 views for HTC++).
    cfg = _shrunk_config(name, work_dir, 'tta', pretrained, {
        'model.test_cfg.rpn.max_per_img': 5, 'model.test_cfg.rcnn.max_per_img': 3,
        'test_dataloader.dataset.indices': 1})
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / 'shrunk_config.py'  # written plainly: cfg.dump formats with yapf (s)
    config.write_text(''.join(f'{key} = {value!r}\n' for key, value in cfg.to_dict().items()))
    spec = importlib.util.spec_from_file_location('test_tool', REPO / 'tools' / 'test.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([str(config), str(checkpoint), '--tta', '--work-dir', str(work_dir)])
    return _newest_log(work_dir)


@pytest.mark.slow
@pytest.mark.parametrize('name', DETECTION + SEGMENTATION)
def test_recipe_trains_resumes_and_fine_tunes(name, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(data_dir)  # the configs' data_root 'data/coco/', 'data/ade/...'
    detection = name in DETECTION
    cfg = load_config(str(REPO / 'configs' / name))
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    pretrained = _stand_in_pretrained(cfg, tmp_path / 'pretrained.pth')
    work = tmp_path / 'work'
    length = 'train_cfg.max_epochs' if detection else 'train_cfg.max_iters'
    first = 1 if detection else 2  # 2 iterations: an epoch of 2 images / 2 iterations
    # Resuming and fine-tuning run one iteration each: one image per epoch, no validation.
    once = {'train_cfg.val_begin': 100,
            **({'train_dataloader.dataset.indices': 1} if detection else {})}

    log = _run(name, work, 'train', pretrained, {length: first})
    assert f'SwinBackbone: loaded {pretrained} (official layout' in log
    assert 'norm0, norm1, norm2 keep their initialisation' in log
    assert not re.search(r'WARNING - SwinBackbone', log)
    if 'htcpp' in name:
        assert re.search(r'INFO - SwinBackbone: global_attn \(\d+ tensors\) starts as an '
                         r'identity', log)
    assert ('Epoch(train) [1][2/2]' if detection else 'Iter(train) [2/2]') in log
    metric = r'coco/bbox_mAP: -?\d\.\d+ .*coco/segm_mAP: -?\d\.\d+' if detection else \
        r'mIoU: \d+\.\d+'
    assert re.search(metric, log), log[-3000:]
    checkpoint = work / ('epoch_1.pth' if detection else 'iter_2.pth')
    # read_checkpoint takes mmengine's file (numpy scalars, HistoryBuffers) as torch's
    # full unpickler reads it.
    ours, full = read_checkpoint(str(checkpoint)), torch.load(checkpoint, weights_only=False)
    assert ours['meta'] == full['meta'] and ours['state_dict'].keys() == full['state_dict'].keys()
    assert all(torch.equal(ours['state_dict'][k], v) for k, v in full['state_dict'].items())
    if name not in FULL_CYCLE:
        return

    if detection:  # multi-scale + flip test of the trained checkpoint, masks merged
        log = _test_with_tta(name, tmp_path / 'tta', pretrained, checkpoint)
        assert 'InstanceSegTTAModel' in log
        assert re.search(r'Epoch\(test\) \[1/1\].*' + metric, log), log[-3000:]

    log = _run(name, work, 'resume', pretrained,
               {'resume': True, length: first + 1, **once})
    assert re.search(rf'resumed epoch: {1 if detection else 0}, iter: 2', log)
    assert ('Epoch(train) [2][1/1]' if detection else 'Iter(train) [3/3]') in log

    last = work / ('epoch_2.pth' if detection else 'iter_3.pth')
    log = _run(name, tmp_path / 'fine_tune', 'load_from', pretrained,
               {'load_from': str(last), length: 1, **once})
    assert f'Load checkpoint from {last}' in log
    assert ('Epoch(train) [1][1/1]' if detection else 'Iter(train) [1/1]') in log
