"""Every shipped config: the published recipe values, and a real build + forward on CPU.

Expected values are written from the recipe sources that configs/README.md lists
(Swin-Transformer-Object-Detection@c7b2011, Swin-Transformer-Semantic-Segmentation@87e6f90,
the Swin paper, the microsoft/Swin-Transformer README, ViT-Adapter's HTC++), not read
from the configs.
"""
import glob
import json
import os

import cv2

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData

import swin_mm  # noqa: F401
from swin_mm.models import arch_settings

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'configs')
# Short alias: the OpenMMLab-convention file it stands for.
CONFIG_OF = {
    'mask_rcnn_swin_t_coco_1x': 'mask-rcnn_swin-t-p4-w7_fpn_ms-crop-1x_coco',
    'mask_rcnn_swin_t_coco_3x': 'mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco',
    'mask_rcnn_swin_s_coco_3x': 'mask-rcnn_swin-s-p4-w7_fpn_ms-crop-3x_coco',
    'cascade_mask_rcnn_swin_t_coco_3x':
        'cascade-mask-rcnn_swin-t-p4-w7_fpn_4conv1fc-giou_ms-crop-3x_coco',
    'cascade_mask_rcnn_swin_s_coco_3x':
        'cascade-mask-rcnn_swin-s-p4-w7_fpn_4conv1fc-giou_ms-crop-3x_coco',
    'cascade_mask_rcnn_swin_b_coco_3x':
        'cascade-mask-rcnn_swin-b-p4-w7_fpn_4conv1fc-giou_ms-crop-3x_coco',
    'htcpp_swin_b_coco': 'htcpp_swin-b-p4-w12-in22k-384x384-pre_fpn_instaboost-ms-400-1400-6x_coco',
    'htcpp_swin_l_coco': 'htcpp_swin-l-p4-w12-in22k-384x384-pre_fpn_instaboost-ms-400-1400-3x_coco',
    'upernet_swin_t_ade20k': 'upernet_swin-t-p4-w7_8xb2-160k_ade20k-512x512',
    'upernet_swin_s_ade20k': 'upernet_swin-s-p4-w7_8xb2-160k_ade20k-512x512',
    'upernet_swin_b_ade20k': 'upernet_swin-b-p4-w7_8xb2-160k_ade20k-512x512',
    'upernet_swin_b_22k_ade20k_640':
        'upernet_swin-b-p4-w12-in22k-384x384-pre_8xb2-160k_ade20k-640x640',
    'upernet_swin_l_22k_ade20k_640':
        'upernet_swin-l-p4-w12-in22k-384x384-pre_8xb2-160k_ade20k-640x640',
}
URL = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/'
# The library's arch zoo by the configs' letters, as lists (configs write lists).
ARCH = {size.upper(): {k: list(v) if isinstance(v, tuple) else v
                       for k, v in arch_settings(size).items()} for size in 'tsbl'}
CHANNELS = {size: [arch['embed_dims'] * 2 ** i for i in range(4)]
            for size, arch in ARCH.items()}
# name: (arch, window, drop_path, pretrain size, checkpoint file)
BACKBONES = {
    'mask_rcnn_swin_t_coco_1x': ('T', 7, 0.1, 224, 'swin_tiny_patch4_window7_224.pth'),
    'mask_rcnn_swin_t_coco_3x': ('T', 7, 0.2, 224, 'swin_tiny_patch4_window7_224.pth'),
    'mask_rcnn_swin_s_coco_3x': ('S', 7, 0.2, 224, 'swin_small_patch4_window7_224.pth'),
    'cascade_mask_rcnn_swin_t_coco_3x': ('T', 7, 0.2, 224, 'swin_tiny_patch4_window7_224.pth'),
    'cascade_mask_rcnn_swin_s_coco_3x': ('S', 7, 0.2, 224, 'swin_small_patch4_window7_224.pth'),
    'cascade_mask_rcnn_swin_b_coco_3x': ('B', 7, 0.3, 224, 'swin_base_patch4_window7_224.pth'),
    'htcpp_swin_b_coco': ('B', 12, 0.2, 384, 'swin_base_patch4_window12_384_22k.pth'),
    'htcpp_swin_l_coco': ('L', 12, 0.2, 384, 'swin_large_patch4_window12_384_22k.pth'),
    'upernet_swin_t_ade20k': ('T', 7, 0.3, 224, 'swin_tiny_patch4_window7_224.pth'),
    'upernet_swin_s_ade20k': ('S', 7, 0.3, 224, 'swin_small_patch4_window7_224.pth'),
    'upernet_swin_b_ade20k': ('B', 7, 0.3, 224, 'swin_base_patch4_window7_224.pth'),
    'upernet_swin_b_22k_ade20k_640': ('B', 12, 0.3, 384, 'swin_base_patch4_window12_384_22k.pth'),
    'upernet_swin_l_22k_ade20k_640': ('L', 12, 0.3, 384,
                                      'swin_large_patch4_window12_384_22k.pth'),
}
MASK_RCNN = [n for n in BACKBONES if n.startswith('mask_rcnn')]
CASCADE = [n for n in BACKBONES if n.startswith('cascade')]
HTCPP = [n for n in BACKBONES if n.startswith('htcpp')]
UPERNET = [n for n in BACKBONES if n.startswith('upernet')]
NO_DECAY_KEYS = {'absolute_pos_embed': dict(decay_mult=0.),
                 'relative_position_bias_table': dict(decay_mult=0.),
                 'norm': dict(decay_mult=0.)}
COCO_MS_SCALES = [(s, 1333) for s in (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)]


def load(name):
    """The recipe config behind a short name (the alias itself is checked on its own)."""
    return Config.fromfile(os.path.join(CONFIG_DIR, CONFIG_OF[name] + '.py'))


def by_type(pipeline, type_name):
    found = [t for t in pipeline if t['type'] == type_name]
    assert len(found) == 1, f'{type_name} appears {len(found)} times in {pipeline}'
    return found[0]


def test_every_config_is_covered():
    from test_swin_v2_recipe_configs import V2_CONFIG_OF  # the Swin V2 recipes' checks
    shipped = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CONFIG_DIR, '*.py'))}
    assert shipped == set(CONFIG_OF) | set(CONFIG_OF.values()) | set(V2_CONFIG_OF) | \
        set(V2_CONFIG_OF.values())
    assert set(CONFIG_OF) == set(BACKBONES)


@pytest.mark.parametrize('alias', sorted(CONFIG_OF))
def test_short_name_is_an_alias(alias):
    """One `_base_` line, and the same config as the file it names."""
    path = os.path.join(CONFIG_DIR, alias + '.py')
    with open(path) as stream:
        assert stream.read() == f"_base_ = ['./{CONFIG_OF[alias]}.py']\n"
    assert Config.fromfile(path).to_dict() == load(alias).to_dict()


@pytest.mark.parametrize('demo,recipe', [
    ('cascade_mask_rcnn_swin_synthetic_coco', 'cascade_mask_rcnn_swin_t_coco_3x'),
    ('upernet_swin_synthetic_ade20k', 'upernet_swin_t_ade20k')])
def test_demo_inherits_its_recipe(demo, recipe):
    """The demos shrink sizes and the schedule; the rest is the recipe's."""
    cfg = Config.fromfile(os.path.join(CONFIG_DIR, 'demo', demo + '.py'))
    full = load(recipe)
    for key in ('custom_imports', 'default_scope', 'val_cfg', 'test_cfg'):
        assert cfg[key] == full[key], key
    assert cfg.optim_wrapper.paramwise_cfg == full.optim_wrapper.paramwise_cfg
    assert cfg.model.type == full.model.type
    assert cfg.model.backbone.type == 'SwinBackbone' and cfg.model.backbone.init_cfg is None
    assert cfg.schedule_recipe is None  # its schedule is not the published one


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_backbone_and_optimizer(name):
    arch, window, drop_path, pretrain_size, checkpoint = BACKBONES[name]
    cfg = load(name)
    # Detection configs also import the instance-segmentation TTA model (needs mmdet).
    imports = ['swin_mm'] if name.startswith('upernet') else ['swin_mm', 'swin_mm.tta']
    assert cfg.custom_imports == dict(imports=imports, allow_failed_imports=False)
    backbone = cfg.model.backbone
    assert backbone.type == 'SwinBackbone'
    for key, value in ARCH[arch].items():
        found = backbone[key]
        assert (list(found) if isinstance(found, (list, tuple)) else found) == value, key
    assert backbone.window_size == window
    assert backbone.drop_path_rate == drop_path
    assert backbone.get('pretrain_img_size', 224) == pretrain_size
    shared = dict(patch_size=4, mlp_ratio=4, qkv_bias=True, qk_scale=None, drop_rate=0.,
                  attn_drop_rate=0., use_abs_pos_embed=False, patch_norm=True, with_cp=False)
    for key, value in shared.items():
        assert backbone.get(key, value) == value, key
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=URL + checkpoint)
    assert bool(backbone.get('global_attn', False)) == name.startswith('htcpp')

    optim = cfg.optim_wrapper
    assert optim.type == 'OptimWrapper'
    lr, wd = (6e-5, 0.01) if name.startswith('upernet') else (1e-4, 0.05)
    assert optim.optimizer == dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=wd)
    assert optim.paramwise_cfg.custom_keys == NO_DECAY_KEYS
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs = 16


def check_ms_crop_data(cfg):
    """Swin-Transformer-Object-Detection's DETR-style augmentation (shared by its Mask
    R-CNN and Cascade Mask R-CNN recipes), single-scale test, bbox + segm every epoch."""
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert by_type(pipeline, 'RandomFlip').prob == 0.5
    policies = by_type(pipeline, 'RandomChoice').transforms
    assert len(policies) == 2
    assert [t.type for t in policies[0]] == ['RandomChoiceResize']
    assert [tuple(s) for s in policies[0][0].scales] == COCO_MS_SCALES
    resize, crop, resize_again = policies[1]
    assert [tuple(s) for s in resize.scales] == [(400, 1333), (500, 1333), (600, 1333)]
    assert (crop.crop_type, tuple(crop.crop_size)) == ('absolute_range', (384, 600))
    assert crop.allow_negative_crop is True
    assert [tuple(s) for s in resize_again.scales] == COCO_MS_SCALES
    test_resize = by_type(cfg.test_dataloader.dataset.pipeline, 'Resize')
    assert tuple(test_resize.scale) == (1333, 800)
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    assert cfg.train_cfg.val_interval == 1 and cfg.default_hooks.checkpoint.interval == 1


def check_test_cfg(test):
    """The test settings Mask R-CNN and Cascade Mask R-CNN share in the Swin repository."""
    assert (test.rpn.nms_pre, test.rpn.max_per_img) == (1000, 1000)
    assert test.rcnn == dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                             max_per_img=100, mask_thr_binary=0.5)


@pytest.mark.parametrize('name', MASK_RCNN)
def test_mask_rcnn_recipe(name):
    """configs/_base_/models/mask_rcnn_swin_fpn.py and the three configs/swin/mask_rcnn_*
    files of Swin-Transformer-Object-Detection@c7b2011."""
    cfg = load(name)
    model = cfg.model
    assert model.type == 'MaskRCNN' and cfg.default_scope == 'mmdet'
    assert model.neck == dict(type='FPN', in_channels=CHANNELS[BACKBONES[name][0]],
                              out_channels=256, num_outs=5)
    assert model.rpn_head.anchor_generator.scales == [8]
    assert model.rpn_head.anchor_generator.ratios == [0.5, 1.0, 2.0]
    assert model.rpn_head.loss_bbox == dict(type='L1Loss', loss_weight=1.0)
    roi = model.roi_head
    assert roi.type == 'StandardRoIHead'
    head = roi.bbox_head
    assert head.type == 'Shared2FCBBoxHead' and head.fc_out_channels == 1024
    assert head.bbox_coder.target_stds == [0.1, 0.1, 0.2, 0.2]
    assert head.reg_class_agnostic is False
    assert head.loss_bbox == dict(type='L1Loss', loss_weight=1.0)
    assert roi.mask_head.type == 'FCNMaskHead' and roi.mask_head.num_convs == 4
    assert roi.mask_roi_extractor.roi_layer.output_size == 14
    train = model.train_cfg
    assert train.rpn.allowed_border == -1 and train.rpn.assigner.match_low_quality is True
    assert (train.rpn_proposal.nms_pre, train.rpn_proposal.max_per_img) == (2000, 1000)
    assert train.rcnn.assigner.pos_iou_thr == 0.5
    assert train.rcnn.assigner.match_low_quality is True
    assert (train.rcnn.sampler.num, train.rcnn.sampler.pos_fraction) == (512, 0.25)
    assert train.rcnn.mask_size == 28
    check_test_cfg(model.test_cfg)
    check_ms_crop_data(cfg)
    epochs, milestones = (12, [8, 11]) if name.endswith('_1x') else (36, [27, 33])
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[-1].milestones == milestones
    assert (cfg.param_scheduler[0].start_factor, cfg.param_scheduler[0].end) == (0.001, 501)


@pytest.mark.parametrize('name', MASK_RCNN + CASCADE + HTCPP)
def test_detection_tta(name):
    """tools/test.py --tta: the mask-merging TTA model over scales x flips; HTC++ at
    ViT-Adapter's six multi-scale-test scales, the others at mmdet 3.x's TTA scales."""
    cfg = load(name)
    assert cfg.tta_model == dict(type='InstanceSegTTAModel')
    aug = by_type(cfg.tta_pipeline, 'TestTimeAug')
    resizes, flips, annotations, pack = aug.transforms
    scales = [(3000, s) for s in range(600, 1601, 200)] if name.startswith('htcpp') else \
        [(1333, 800), (666, 400), (2000, 1200)]
    assert [tuple(r.scale) for r in resizes] == scales
    assert all(r.keep_ratio for r in resizes)
    assert [f.prob for f in flips] == [0., 1.]
    assert {'flip', 'flip_direction', 'scale_factor', 'img_shape'} <= set(pack[0].meta_keys)


@pytest.mark.parametrize('name', CASCADE)
def test_cascade_recipe(name):
    cfg = load(name)
    model = cfg.model
    assert model.type == 'CascadeRCNN' and cfg.default_scope == 'mmdet'
    assert model.neck == dict(type='FPN', in_channels=CHANNELS[BACKBONES[name][0]],
                              out_channels=256, num_outs=5)
    assert model.rpn_head.anchor_generator.scales == [8]
    assert model.rpn_head.anchor_generator.strides == [4, 8, 16, 32, 64]
    assert model.rpn_head.loss_bbox == dict(type='SmoothL1Loss', beta=1.0 / 9.0,
                                            loss_weight=1.0)
    roi = model.roi_head
    assert roi.num_stages == 3 and roi.stage_loss_weights == [1, 0.5, 0.25]
    stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
    for head, std in zip(roi.bbox_head, stds, strict=True):
        assert head.type == 'ConvFCBBoxHead'
        assert (head.num_shared_convs, head.num_shared_fcs) == (4, 1)  # 4conv1fc
        assert head.fc_out_channels == 1024 and head.conv_out_channels == 256
        assert head.norm_cfg == dict(type='SyncBN', requires_grad=True)
        assert head.loss_bbox == dict(type='GIoULoss', loss_weight=10.0)
        assert head.reg_decoded_bbox is True and head.reg_class_agnostic is False
        assert head.bbox_coder.target_stds == std
    assert roi.mask_head.type == 'FCNMaskHead' and roi.mask_head.num_convs == 4
    assert roi.mask_roi_extractor.roi_layer.output_size == 14
    train = model.train_cfg
    assert train.rpn.allowed_border == 0 and train.rpn.assigner.match_low_quality is True
    assert (train.rpn_proposal.nms_pre, train.rpn_proposal.max_per_img) == (2000, 2000)
    for stage, iou in zip(train.rcnn, [0.5, 0.6, 0.7], strict=True):
        assert stage.assigner.pos_iou_thr == iou and stage.assigner.match_low_quality is False
        assert (stage.sampler.num, stage.sampler.pos_fraction) == (512, 0.25)
    check_test_cfg(model.test_cfg)
    check_ms_crop_data(cfg)


@pytest.mark.parametrize('name', HTCPP)
def test_htcpp_recipe(name):
    cfg = load(name)
    model = cfg.model
    assert model.type == 'HybridTaskCascade'
    assert model.roi_head.type == 'HybridTaskCascadeRoIHead'
    assert model.backbone.global_attn is True
    assert model.neck.in_channels == CHANNELS[BACKBONES[name][0]]
    assert model.test_cfg.rcnn.nms.type == 'soft_nms'
    # ViT-Adapter's choices where the paper is silent: 4conv1fc heads, semantic branch.
    assert [h.type for h in model.roi_head.bbox_head] == ['Shared4Conv1FCBBoxHead'] * 3
    assert model.roi_head.semantic_head.num_classes == 183

    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in pipeline][:3] == ['LoadImageFromFile', 'InstaBoost',
                                              'LoadAnnotations']
    instaboost = by_type(pipeline, 'InstaBoost')
    expected = dict(action_candidate=('normal', 'horizontal', 'skip'), action_prob=(1, 0, 0),
                    scale=(0.8, 1.2), dx=15, dy=15, theta=(-1, 1), color_prob=0.5,
                    hflag=False, aug_ratio=0.5)
    for key, value in expected.items():
        assert instaboost[key] == value, key
    resize = by_type(pipeline, 'RandomResize')  # short side 400..1400, long side <= 1600
    assert [tuple(s) for s in resize.scale] == [(1600, 400), (1600, 1400)]
    assert resize.keep_ratio is True
    assert by_type(pipeline, 'LoadAnnotations').with_seg is True
    test_resize = by_type(cfg.test_dataloader.dataset.pipeline, 'Resize')
    assert tuple(test_resize.scale) == (1600, 1400)  # ViT-Adapter; the paper gives none
    assert cfg.param_scheduler[0].start_factor == 0.001

    epochs, milestones = {'htcpp_swin_b_coco': (72, [63, 69]),
                          'htcpp_swin_l_coco': (36, [27, 33])}[name]
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[-1].milestones == milestones


@pytest.mark.parametrize('name', UPERNET)
def test_upernet_recipe(name):
    cfg = load(name)
    arch = BACKBONES[name][0]
    crop = (640, 640) if name.endswith('_640') else (512, 512)
    test_scale = (4 * crop[0], crop[0])
    model = cfg.model
    assert model.type == 'EncoderDecoder' and cfg.default_scope == 'mmseg'
    assert tuple(model.data_preprocessor.size) == crop
    assert (model.data_preprocessor.pad_val, model.data_preprocessor.seg_pad_val) == (0, 255)
    head = model.decode_head
    assert head.type == 'UPerHead' and head.in_channels == CHANNELS[arch]
    assert (head.channels, tuple(head.pool_scales), head.num_classes) == (512, (1, 2, 3, 6), 150)
    assert head.dropout_ratio == 0.1 and head.loss_decode.loss_weight == 1.0
    aux = model.auxiliary_head
    assert aux.type == 'FCNHead' and aux.in_index == 2 and aux.in_channels == CHANNELS[arch][2]
    assert (aux.channels, aux.num_convs, aux.concat_input) == (256, 1, False)
    assert aux.loss_decode.loss_weight == 0.4
    for h in (head, aux):
        assert h.norm_cfg == dict(type='SyncBN', requires_grad=True)
    assert model.test_cfg.mode == 'whole'

    pipeline = cfg.train_dataloader.dataset.pipeline
    assert by_type(pipeline, 'LoadAnnotations').reduce_zero_label is True
    resize = by_type(pipeline, 'RandomResize')
    assert tuple(resize.scale) == test_scale and tuple(resize.ratio_range) == (0.5, 2.0)
    random_crop = by_type(pipeline, 'RandomCrop')
    assert tuple(random_crop.crop_size) == crop and random_crop.cat_max_ratio == 0.75
    assert by_type(pipeline, 'RandomFlip').prob == 0.5
    by_type(pipeline, 'PhotoMetricDistortion')
    assert tuple(by_type(cfg.test_dataloader.dataset.pipeline, 'Resize').scale) == test_scale

    # The Swin repository's --aug-test: ratios 0.5..1.75 of the test scale, +- flip.
    resizes, flips = cfg.tta_pipeline[1].transforms[:2]
    ratios = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
    assert [tuple(r.scale) for r in resizes] == [
        (int(test_scale[0] * r), int(test_scale[1] * r)) for r in ratios]
    assert [f.prob for f in flips] == [0., 1.]
    assert cfg.tta_model.type == 'SegTTAModel'

    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=16000)
    assert cfg.default_hooks.checkpoint.interval == 16000
    assert cfg.val_evaluator == dict(type='IoUMetric', iou_metrics=['mIoU'])
    assert cfg.param_scheduler[0].start_factor == 1e-6
    assert (cfg.param_scheduler[1].power, cfg.param_scheduler[1].eta_min) == (1.0, 0.0)


# --- build through the registries and run one step -----------------------------------

def build_model(cfg):
    """Whole model from the config's own registry scope; SyncBN reverted for one CPU."""
    cfg.model.backbone.init_cfg = None  # no downloads in tests
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        registry = __import__(f'{cfg.default_scope}.registry', fromlist=['MODELS']).MODELS
        model = registry.build(cfg.model)
    return revert_sync_batchnorm(model)


def fewer_rois(cfg):
    """Smaller RoI counts: they scale the heads' work on CPU, not what is built."""
    train, test = cfg.model.train_cfg, cfg.model.test_cfg
    train.rpn_proposal.update(nms_pre=200, max_per_img=100)
    for stage in train.rcnn if isinstance(train.rcnn, list) else [train.rcnn]:
        stage.sampler.num = 32
    test.rpn.update(nms_pre=100, max_per_img=50)


def detection_batch(with_semantic):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    gen = torch.Generator().manual_seed(0)
    image = (torch.rand(3, 128, 128, generator=gen) * 255).to(torch.uint8)
    sample = DetDataSample(metainfo=dict(img_id=0, img_shape=(128, 128), ori_shape=(128, 128),
                                         scale_factor=(1., 1.)))
    masks = np.zeros((2, 128, 128), dtype=np.uint8)
    masks[0, 10:60, 20:80] = 1
    masks[1, 64:120, 30:100] = 1
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[20., 10., 80., 60.], [30., 64., 100., 120.]]),
        labels=torch.tensor([1, 5]), masks=BitmapMasks(masks, 128, 128))
    if with_semantic:
        sample.gt_sem_seg = PixelData(sem_seg=torch.randint(0, 183, (1, 128, 128), generator=gen))
    return dict(inputs=[image], data_samples=[sample])


def _tiered(names, quick):
    """Full-size models: the quick tier (make test) builds `quick`, make test-all all."""
    return [pytest.param(n, marks=() if n == quick else pytest.mark.slow) for n in names]


@pytest.mark.parametrize('name', _tiered(MASK_RCNN + CASCADE + HTCPP,
                                          'cascade_mask_rcnn_swin_t_coco_3x'))
def test_detector_builds_and_computes_losses(name):
    cfg = load(name)
    fewer_rois(cfg)
    model = build_model(cfg)
    assert type(model.backbone).__name__ == 'SwinBackbone'
    assert (model.backbone.global_attn is not None) == name.startswith('htcpp')
    data = model.data_preprocessor(detection_batch(name.startswith('htcpp')), training=True)
    with torch.no_grad():  # a forward through every loss; backward would double the time
        losses = model(**data, mode='loss')
    expected = {'loss_bbox', 'loss_mask'} if name.startswith('mask_rcnn') else \
        {'s0.loss_bbox', 's2.loss_mask'}
    assert expected | {'loss_rpn_cls'} <= set(losses)
    loss = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
               for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    if name == 'htcpp_swin_b_coco':  # the soft-NMS test path
        model.eval()
        with torch.no_grad():
            data = model.data_preprocessor(detection_batch(False), training=False)
            result = model(**data, mode='predict')[0]
        assert len(result.pred_instances) <= 100


@pytest.mark.parametrize('name', _tiered(UPERNET, 'upernet_swin_t_ade20k'))
def test_segmentor_builds_and_computes_losses(name):
    from mmseg.structures import SegDataSample
    model = build_model(load(name))
    assert type(model.backbone).__name__ == 'SwinBackbone'
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):  # two images: BatchNorm after the 1x1 pyramid pool needs them
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                             pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 64), generator=gen))
        samples.append(sample)
    with torch.no_grad():  # a forward through both losses; backward would double the time
        losses = model.loss(torch.randn(2, 3, 64, 64, generator=gen), samples)
    loss = losses['decode.loss_ce'] + losses['aux.loss_ce']
    assert torch.isfinite(loss) and loss > 0


# --- the data pipelines on real files ------------------------------------------------

def write_coco(root):
    """One 300x200 image with one polygon, its COCO json and a COCO-stuff map."""
    from mmdet.datasets import CocoDataset
    rng = np.random.default_rng(0)
    for folder in ('train2017', 'stuffthingmaps/train2017', 'annotations'):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    cv2.imwrite(os.path.join(root, 'train2017', '1.jpg'),
                rng.integers(0, 255, (200, 300, 3), dtype=np.uint8))
    cv2.imwrite(os.path.join(root, 'stuffthingmaps', 'train2017', '1.png'),
                rng.integers(0, 183, (200, 300), dtype=np.uint8))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CocoDataset.METAINFO['classes'])]
    annotation = dict(id=1, image_id=1, category_id=1, bbox=[50, 40, 100, 80], area=8000,
                      iscrowd=0, segmentation=[[50, 40, 150, 40, 150, 120, 50, 120]])
    with open(os.path.join(root, 'annotations', 'instances_train2017.json'), 'w') as f:
        json.dump(dict(images=[dict(id=1, file_name='1.jpg', height=200, width=300)],
                       categories=categories, annotations=[annotation]), f)


@pytest.mark.parametrize('name', ['cascade_mask_rcnn_swin_t_coco_3x', 'htcpp_swin_b_coco'])
def test_coco_train_pipeline_on_files(name, tmp_path):
    """Real CocoDataset + transforms (InstaBoost for HTC++) on a generated COCO file."""
    from mmdet.registry import DATASETS
    write_coco(str(tmp_path))
    dataset_cfg = load(name).train_dataloader.dataset
    dataset_cfg.data_root = str(tmp_path)
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(dataset_cfg)
    item = dataset[0]
    height, width = item['inputs'].shape[1:]
    if name.startswith('htcpp'):  # short side in [400, 1400], long side <= 1600
        assert min(height, width) >= 400 - 1 and max(height, width) <= 1600
        assert item['data_samples'].gt_sem_seg.sem_seg.shape[1:] == (height, width)
    else:  # short side one of 480..800, or cropped then resized to one of them
        assert max(height, width) <= 1333
    assert len(item['data_samples'].gt_instances) == 1


def test_ade20k_tta_pipeline_on_files(tmp_path):
    """tools/test.py --tta input: 6 scales of (2048, 512) x {no flip, flip}, labels reduced."""
    from mmseg.registry import DATASETS
    for split in ('images/validation', 'annotations/validation'):
        os.makedirs(tmp_path / split)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / 'images/validation/a.jpg'),
                rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / 'annotations/validation/a.png'),
                rng.integers(0, 151, (60, 80), dtype=np.uint8))
    cfg = load('upernet_swin_t_ade20k')
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.update(data_root=str(tmp_path), pipeline=cfg.tta_pipeline)
    with DefaultScope.overwrite_default_scope('mmseg'):
        views = DATASETS.build(dataset_cfg)[0]
    shapes = [tuple(image.shape[1:]) for image in views['inputs']]
    # keep_ratio into (2048r, 512r): the 4:3 image is bounded by the short side 512r.
    expected = [(int(512 * r), int(512 * r * 4 / 3 + 0.5)) for r in
                (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]
    assert sorted(set(shapes)) == sorted(expected) and len(shapes) == 12
    assert [s.flip for s in views['data_samples']].count(True) == 6
    labels = set(views['data_samples'][0].gt_sem_seg.data.unique().tolist())
    assert labels <= set(range(150)) | {255} and 255 in labels  # 0 -> 255, 1..150 -> 0..149
