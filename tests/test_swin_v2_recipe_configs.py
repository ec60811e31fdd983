"""The Swin V2 recipe configs: the paper's values (arXiv 2111.09883v2, A1.2 for T/S/B,
A2.1 for L; expected values written from the paper and configs/README.md, not read from
the configs), everything the paper leaves to the V1 recipes equal to those V1 configs,
the registries building the full-size models and their losses, a checkpoint trained at
one window tested at another, and (slow tier) 2 iterations of each on synthetic data."""
import os
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from swin_mm import SwinV2Backbone
from swin_mm.models import arch_settings
from test_configs import build_model, detection_batch, fewer_rois

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs'
URL = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/'
# Short alias: the OpenMMLab-convention file it stands for.
V2_CONFIG_OF = {
    'cascade_mask_rcnn_swinv2_t_coco_3x':
        'cascade-mask-rcnn_swinv2-t-p4-w16-in1k-w8-pre_fpn_4conv1fc-giou_ms-crop-3x_coco',
    'cascade_mask_rcnn_swinv2_s_coco_3x':
        'cascade-mask-rcnn_swinv2-s-p4-w16-in1k-w8-pre_fpn_4conv1fc-giou_ms-crop-3x_coco',
    'cascade_mask_rcnn_swinv2_b_coco_3x':
        'cascade-mask-rcnn_swinv2-b-p4-w16-in1k-w8-pre_fpn_4conv1fc-giou_ms-crop-3x_coco',
    'upernet_swinv2_t_ade20k': 'upernet_swinv2-t-p4-w16-in1k-w8-pre_8xb2-160k_ade20k-512x512',
    'upernet_swinv2_s_ade20k': 'upernet_swinv2-s-p4-w16-in1k-w8-pre_8xb2-160k_ade20k-512x512',
    'upernet_swinv2_b_ade20k': 'upernet_swinv2-b-p4-w16-in1k-w8-pre_8xb2-160k_ade20k-512x512',
    'htcpp_swinv2_l_coco':
        'htcpp_swinv2-l-p4-w32-in22k-w12-pre_fpn_instaboost-lsj-1536_64xb1-3x_coco',
    'htcpp_swinv2_l_coco_w48_test':
        'htcpp_swinv2-l-p4-w32-in22k-w12-pre_fpn_instaboost-lsj-1536_64xb1-3x_coco_w48-test',
    'upernet_swinv2_l_22k_ade20k_640':
        'upernet_swinv2-l-p4-w40-in22k-w12-pre_16xb4-40k_ade20k-640x640',
}
L_PRETRAINED = [12, 12, 12, 6]  # 192x192 at window 12: stage 3's 6x6 map attended whole
# name: (size, window, pretrained window, drop path, checkpoint file, V1 config it extends)
V2 = {
    'cascade_mask_rcnn_swinv2_t_coco_3x':
        ('T', 16, 8, 0.2, 'swinv2_tiny_patch4_window8_256.pth', 'cascade_mask_rcnn_swin_t_coco_3x'),
    'cascade_mask_rcnn_swinv2_s_coco_3x':
        ('S', 16, 8, 0.2, 'swinv2_small_patch4_window8_256.pth',
         'cascade_mask_rcnn_swin_s_coco_3x'),
    'cascade_mask_rcnn_swinv2_b_coco_3x':
        ('B', 16, 8, 0.3, 'swinv2_base_patch4_window8_256.pth', 'cascade_mask_rcnn_swin_b_coco_3x'),
    'upernet_swinv2_t_ade20k':
        ('T', 16, 8, 0.3, 'swinv2_tiny_patch4_window8_256.pth', 'upernet_swin_t_ade20k'),
    'upernet_swinv2_s_ade20k':
        ('S', 16, 8, 0.3, 'swinv2_small_patch4_window8_256.pth', 'upernet_swin_s_ade20k'),
    'upernet_swinv2_b_ade20k':
        ('B', 16, 8, 0.3, 'swinv2_base_patch4_window8_256.pth', 'upernet_swin_b_ade20k'),
    'htcpp_swinv2_l_coco':
        ('L', 32, L_PRETRAINED, 0.2, 'swinv2_large_patch4_window12_192_22k.pth',
         'htcpp_swin_l_coco'),
    'htcpp_swinv2_l_coco_w48_test':
        ('L', 48, L_PRETRAINED, 0.2, 'swinv2_large_patch4_window12_192_22k.pth',
         'htcpp_swin_l_coco'),
    'upernet_swinv2_l_22k_ade20k_640':
        ('L', 40, L_PRETRAINED, 0.3, 'swinv2_large_patch4_window12_192_22k.pth',
         'upernet_swin_l_22k_ade20k_640'),
}
# name: (lr, weight decay, layer-wise decay rate, backbone lr factor, images per GPU)
OPTIMIZER = {
    **{f'cascade_mask_rcnn_swinv2_{s}_coco_3x': (1e-4, 0.05, 1.0, 1.0, 2) for s in 'tsb'},
    **{f'upernet_swinv2_{s}_ade20k': (6e-5, 0.05, 0.95, 1.0, 2) for s in 'tsb'},
    'htcpp_swinv2_l_coco': (4e-4, 0.05, 1.0, 0.1, 1),  # x 64 GPUs
    'htcpp_swinv2_l_coco_w48_test': (4e-4, 0.05, 1.0, 0.1, 1),
    'upernet_swinv2_l_22k_ade20k_640': (6e-5, 0.05, 1.0, 1.0, 4),  # x 16 GPUs
}


def load(name):
    return Config.fromfile(str(CONFIGS / (V2_CONFIG_OF.get(name, name) + '.py')))


def v1(name):
    return Config.fromfile(str(CONFIGS / (V2[name][5] + '.py')))


def by_type(pipeline, type_name):
    found = [t for t in pipeline if t['type'] == type_name]
    assert len(found) == 1, f'{type_name} appears {len(found)} times'
    return found[0]


def without(node: dict, *keys):
    return {k: v for k, v in node.to_dict().items() if k not in keys}


def test_aliases_and_coverage():
    """Each short name is one `_base_` line naming its long file; test_configs.py's
    coverage check counts these configs through V2_CONFIG_OF."""
    for alias, long_name in V2_CONFIG_OF.items():
        assert (CONFIGS / (alias + '.py')).read_text() == f"_base_ = ['./{long_name}.py']\n"
        assert (CONFIGS / (long_name + '.py')).is_file()
    assert set(V2) == set(V2_CONFIG_OF) == set(OPTIMIZER)


@pytest.mark.parametrize('name', sorted(V2))
def test_backbone_optimizer_and_the_rest_of_the_v1_recipe(name):
    size, window, pretrained_window, drop_path, checkpoint, _ = V2[name]
    cfg, base = load(name), v1(name)
    backbone = cfg.model.backbone
    assert backbone.type == 'SwinV2Backbone'
    for key, value in arch_settings(size, 'swinv2').items():
        assert tuple(backbone[key]) == value if isinstance(value, tuple) else \
            backbone[key] == value, key
    assert backbone.window_size == window
    assert backbone.pretrained_window_size == pretrained_window
    assert backbone.drop_path_rate == drop_path
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=URL + checkpoint)
    shared = dict(patch_size=4, mlp_ratio=4, qkv_bias=True, drop_rate=0., attn_drop_rate=0.,
                  patch_norm=True, with_cp=False, frozen_stages=-1)
    assert {k: backbone[k] for k in shared} == shared
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert bool(backbone.get('global_attn', False)) == name.startswith('htcpp')
    assert 'swin_mm.optim' in cfg.custom_imports.imports

    lr, weight_decay, decay_rate, backbone_lr_mult, per_gpu = OPTIMIZER[name]
    optim = cfg.optim_wrapper
    assert optim.constructor == 'SwinLayerDecayOptimWrapperConstructor'
    assert optim.optimizer == dict(type='AdamW', lr=lr, betas=(0.9, 0.999),
                                   weight_decay=weight_decay)
    assert optim.paramwise_cfg.get('decay_rate') == decay_rate
    assert optim.paramwise_cfg.get('backbone_lr_mult', 1.0) == backbone_lr_mult
    assert cfg.train_dataloader.batch_size == per_gpu

    # Where the paper is silent, the V1 recipe: its heads (sized alike), test settings,
    # multi-scale test and, for T/S/B, its data and schedule.
    assert cfg.default_scope == base.default_scope
    assert without(cfg.model, 'backbone', 'data_preprocessor') == \
        without(base.model, 'backbone', 'data_preprocessor')
    assert cfg.tta_model == base.tta_model
    if not name.startswith('htcpp'):
        assert cfg.model.data_preprocessor == base.model.data_preprocessor
        assert cfg.tta_pipeline == base.tta_pipeline
        assert cfg.train_dataloader.dataset == base.train_dataloader.dataset
        assert cfg.test_dataloader == base.test_dataloader
    if name.endswith(('_3x', '_ade20k')):  # T/S/B
        assert cfg.param_scheduler == base.param_scheduler
        assert cfg.train_cfg == base.train_cfg


def test_upernet_large_schedule_and_data():
    """A2.1: 640 crop, 40K iterations, 375-iteration warmup, linear decay, batch 64."""
    cfg = load('upernet_swinv2_l_22k_ade20k_640')
    assert tuple(cfg.model.data_preprocessor.size) == (640, 640)
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
    assert cfg.default_hooks.checkpoint.interval == 4000
    warmup, decay = cfg.param_scheduler
    assert (warmup.type, warmup.end, decay.type, decay.end) == ('LinearLR', 376, 'PolyLR', 40001)
    assert (decay.power, decay.eta_min) == (1.0, 0.0)
    assert cfg.train_dataloader.batch_size * 16 == 64


def test_htcpp_large_data_schedule_and_test():
    """A2.1: InstaBoost, 1536x1536 input with random scale [0.1, 2.0], soft-NMS, 3x;
    Table 3: test at 1100, window 32 (and 48 in the variant, which differs in nothing
    else), multi-scale with the instance-segmentation TTA."""
    cfg = load('htcpp_swinv2_l_coco')
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in pipeline] == [
        'LoadImageFromFile', 'InstaBoost', 'LoadAnnotations', 'RandomResize', 'RandomCrop',
        'FilterAnnotations', 'RandomFlip', 'PackDetInputs']
    assert by_type(pipeline, 'LoadAnnotations').with_seg is True
    resize = by_type(pipeline, 'RandomResize')
    assert (tuple(resize.scale), tuple(resize.ratio_range)) == ((1536, 1536), (0.1, 2.0))
    crop = by_type(pipeline, 'RandomCrop')
    assert (crop.crop_type, tuple(crop.crop_size)) == ('absolute_range', (1536, 1536))
    assert cfg.model.data_preprocessor.batch_augments == [dict(
        type='BatchFixedSizePad', size=(1536, 1536), pad_mask=True, pad_seg=True)]
    assert tuple(by_type(cfg.test_dataloader.dataset.pipeline, 'Resize').scale) == (1100, 1100)
    assert cfg.model.test_cfg.rcnn.nms.type == 'soft_nms'
    assert cfg.tta_model == dict(type='InstanceSegTTAModel')
    assert cfg.tta_pipeline == v1('htcpp_swinv2_l_coco').tta_pipeline
    assert cfg.train_cfg.max_epochs == 36 and cfg.param_scheduler[-1].milestones == [27, 33]
    assert cfg.auto_scale_lr.base_batch_size == 64

    w48 = load('htcpp_swinv2_l_coco_w48_test')
    w48.model.backbone.window_size = 32
    assert w48.to_dict() == cfg.to_dict()


def test_window_changed_at_test_time_matches_mmpretrain():
    """Weights trained at window 8 (pretrained window 8), loaded strictly into a model
    that changes only window_size (to 12), give mmpretrain's SwinTransformerV2 at window
    12 with the same weights: the position-bias MLP is window-free, and the coordinate
    table, index and shift masks are rebuilt for the new window, not read from the file."""
    from helpers import images
    from test_swin_v2_backbone import max_diff, mmpretrain_peer, ours_from
    from test_swin_v2_known_answers import ARCH
    trained = ours_from(mmpretrain_peer(window=8, pretrained=(8, 8, 8, 8)), window=8,
                        pretrained=8)
    state = trained.state_dict()
    assert not any('relative' in k or 'attn_mask' in k for k in state)
    model = SwinV2Backbone(window_size=12, pretrained_window_size=8, **ARCH).eval()
    model.load_state_dict(state, strict=True)
    peer = mmpretrain_peer(window=12, pretrained=(8, 8, 8, 8))
    x = images(1, 200, 168)
    with torch.no_grad():
        got, expected = model(x), peer(x)
        at_window_8 = trained.eval()(x)
    assert max_diff(got, expected) <= 1e-4
    assert max_diff(got, at_window_8) > 1e-3  # the window did change the outputs


# --- full size through the registries ------------------------------------------------

def _tiered(names, quick):
    return [pytest.param(n, marks=() if n == quick else pytest.mark.slow) for n in names]


@pytest.mark.parametrize('name', _tiered(
    ['cascade_mask_rcnn_swinv2_t_coco_3x', 'cascade_mask_rcnn_swinv2_s_coco_3x',
     'cascade_mask_rcnn_swinv2_b_coco_3x', 'htcpp_swinv2_l_coco'], None))
def test_detector_builds_and_computes_losses(name):
    cfg = load(name)
    fewer_rois(cfg)
    htcpp = name.startswith('htcpp')
    if htcpp:  # the 1536x1536 batch padding would make the CPU forward minutes long
        cfg.model.data_preprocessor.batch_augments[0].size = (256, 256)
    model = build_model(cfg)
    assert type(model.backbone) is SwinV2Backbone
    assert (model.backbone.global_attn is not None) == htcpp
    data = model.data_preprocessor(detection_batch(htcpp), training=True)
    with torch.no_grad():
        losses = model(**data, mode='loss')
    assert {'s0.loss_bbox', 's2.loss_mask', 'loss_rpn_cls'} <= set(losses)
    loss = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
               for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)


@pytest.mark.parametrize('name', _tiered(
    ['upernet_swinv2_t_ade20k', 'upernet_swinv2_s_ade20k', 'upernet_swinv2_b_ade20k',
     'upernet_swinv2_l_22k_ade20k_640'], 'upernet_swinv2_t_ade20k'))
def test_segmentor_builds_and_computes_losses(name):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    model = build_model(load(name))
    assert type(model.backbone) is SwinV2Backbone
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                             pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 64), generator=gen))
        samples.append(sample)
    with torch.no_grad():
        losses = model.loss(torch.randn(2, 3, 64, 64, generator=gen), samples)
    loss = losses['decode.loss_ce'] + losses['aux.loss_ce']
    assert torch.isfinite(loss) and loss > 0


# --- 2 iterations on the synthetic data (slow tier) ----------------------------------

def _official_v2_file(path) -> str:
    """The known-answer weights in the official microsoft/Swin-Transformer layout (a
    narrow V2: ARCH of test_swin_v2_known_answers), standing in for the config's URL."""
    from test_swin_v2_known_answers import layout_checkpoint
    torch.save(layout_checkpoint('official'), path)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(set(V2) - {'htcpp_swinv2_l_coco_w48_test'}))
def test_recipe_trains_two_iterations(name, tmp_path, monkeypatch):
    """The real Runner (tools/train.py's setup) on the synthetic COCO / ADE20K data, image
    sizes / 8 (test_recipe_configs_run.shrink_for_cpu), the backbone the known-answer V2
    (window, pretrained windows and global attention kept); the official-layout file
    loads through init_cfg, and the config's optimizer constructor builds the groups.
    UPerNet SwinV2-T then resumes for one iteration (its layer-decay groups restored);
    HTC++ tests its checkpoint at window 48 (the w48 config) with --tta."""
    from swin_mm_dev.runner_setup import build_runner, fit_to_machine, load_config
    from swin_mm_dev.synthetic import write_ade20k, write_coco
    from test_recipe_configs_run import _newest_log, _scaled, shrink_for_cpu
    from test_swin_v2_known_answers import ARCH
    detection = not name.startswith('upernet')
    data = tmp_path / 'data'
    if detection:
        write_coco(data / 'coco', num_train=2, num_val=2, size=64)
    else:
        write_ade20k(data / 'ade', num_train=4, num_val=2, size=64)
    monkeypatch.chdir(tmp_path)
    pretrained = _official_v2_file(tmp_path / 'pretrained.pth')

    def shrunk(config, phase):
        cfg = load_config(str(CONFIGS / (config + '.py')), str(tmp_path / 'work'))
        shrink_for_cpu(cfg)
        cfg.model.backbone.update(ARCH)
        channels = [ARCH['embed_dims'] * 2 ** i for i in range(4)]
        if detection:
            cfg.model.neck.in_channels = channels
        else:
            cfg.model.decode_head.in_channels = channels
            cfg.model.auxiliary_head.in_channels = channels[2]
        for augment in cfg.model.data_preprocessor.get('batch_augments') or []:
            augment.size = _scaled(augment.size)
        for transform in cfg.train_dataloader.dataset.pipeline:
            if transform.type == 'RandomResize' and 'ratio_range' in transform:
                # HTC++'s 0.1 of 1536 / 8 is 19 pixels, no room for an RPN anchor inside
                # the image (allowed_border=0); at full size it is 154.
                transform.ratio_range = (max(transform.ratio_range[0], 0.5),
                                         transform.ratio_range[1])
        cfg.model.backbone.init_cfg.checkpoint = pretrained
        cfg.experiment_name = f'{config}_{phase}'
        cfg.visualizer.name = cfg.experiment_name
        cfg.default_hooks.logger.interval = 1
        return cfg

    cfg = shrunk(name, 'train')
    cfg.merge_from_dict({'train_cfg.max_epochs' if detection else 'train_cfg.max_iters':
                         1 if detection else 2})
    build_runner(cfg, fit_to_machine(cfg, training=True)).train()
    log = _newest_log(tmp_path / 'work')
    assert f'SwinV2Backbone: loaded {pretrained}' in log, log[:3000]
    assert 'SwinLayerDecayOptimWrapperConstructor:' in log
    assert ('Epoch(train) [1][2/2]' if detection else 'Iter(train) [2/2]') in log
    metric = r'coco/bbox_mAP: -?\d\.\d+ .*coco/segm_mAP: -?\d\.\d+' if detection else \
        r'mIoU: \d+\.\d+'
    assert re.search(metric, log), log[-3000:]

    if name == 'upernet_swinv2_t_ade20k':  # --resume restores the layer-decay groups
        cfg = shrunk(name, 'resume')
        cfg.merge_from_dict({'resume': True, 'train_cfg.max_iters': 3,
                             'train_cfg.val_begin': 100})
        runner = build_runner(cfg, fit_to_machine(cfg, training=True))
        runner.train()
        log = _newest_log(tmp_path / 'work')
        assert re.search(r'resumed epoch: 0, iter: 2', log) and 'Iter(train) [3/3]' in log
        lrs = sorted({group['lr'] for group in runner.optim_wrapper.optimizer.param_groups})
        assert len(lrs) == sum(ARCH['depths']) + 2  # one rate per layer id (decay 0.95)

    if name == 'htcpp_swinv2_l_coco':  # the same checkpoint at window 48, with --tta
        import importlib.util
        test_cfg = shrunk('htcpp_swinv2_l_coco_w48_test', 'w48')
        test_cfg.merge_from_dict({'model.test_cfg.rpn.max_per_img': 5,
                                  'model.test_cfg.rcnn.max_per_img': 3,
                                  'test_dataloader.dataset.indices': 1})
        assert test_cfg.model.backbone.window_size == 48
        config = tmp_path / 'w48.py'
        config.write_text(''.join(f'{k} = {v!r}\n' for k, v in test_cfg.to_dict().items()))
        spec = importlib.util.spec_from_file_location('test_tool', REPO / 'tools' / 'test.py')
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
        tool.main([str(config), str(tmp_path / 'work' / 'epoch_1.pth'), '--tta',
                   '--work-dir', str(tmp_path / 'w48')])
        log = _newest_log(tmp_path / 'w48')
        assert 'InstanceSegTTAModel' in log
        assert re.search(r'Epoch\(test\) \[1/1\].*' + metric, log), log[-3000:]
