# The detection half of the embedded demo (`make demo`): the Cascade Mask R-CNN Swin-T
# recipe (the _base_ below, short name cascade_mask_rcnn_swin_t_coco_3x.py) scaled down to
# train from scratch in a few minutes on 2 CPU processes, on the synthetic COCO-format
# shapes of tools/make_synthetic_data.py (64x64 images, 4 classes): small SwinBackbone,
# 32-channel FPN and heads, fewer RoIs, the recipe's multi-scale + crop augmentation at
# 1/8 of its pixel sizes, mmdet's CocoMetric, multi-scale + flip test (--tta) with masks.
# The structure (3-stage cascade, 4conv1fc GIoU heads, FCN mask head, AdamW + custom_keys)
# is the recipe's. Also used by tests/test_tools_dist.py.
_base_ = ['../cascade-mask-rcnn_swin-t-p4-w7_fpn_4conv1fc-giou_ms-crop-3x_coco.py']

data_root = 'work_dirs/demo/data/coco/'
# The synthetic shapes are annotated as four real COCO categories (in COCO id order).
classes = ('umbrella', 'frisbee', 'kite', 'book')
num_classes = len(classes)
channels = 32
max_epochs = 8
batch_size = 4  # per process; the demo runs 2 processes

model = dict(
    backbone=dict(
        embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4,
        drop_path_rate=0.1, init_cfg=None),  # from scratch: no download
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=[
            dict(head, in_channels=channels, conv_out_channels=channels, fc_out_channels=64,
                 num_classes=num_classes)
            for head in _base_.model.roi_head.bbox_head
        ],
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(in_channels=channels, conv_out_channels=channels,
                       num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=[dict(stage, sampler=dict(stage.sampler, num=32))
              for stage in _base_.model.train_cfg.rcnn]),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=20)))

# The recipe's scales divided by 8: short sides 60..100, crops of 48..75 pixels.
ms_scales = [(short, 167) for short in range(60, 101, 4)]
test_scale = (167, 100)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(50, 167), (62, 167), (75, 167)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(48, 75),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# The recipe's TTA scales divided by 8, the test scale first, each with and without flip.
tta_scales = [test_scale, (83, 50), (250, 150)]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[[dict(type='Resize', scale=scale, keep_ratio=True) for scale in tta_scales]]
        + _base_.tta_pipeline[1].transforms[1:]),
]
# Tiny images: loading in the training process is faster than worker processes.
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=batch_size, **loader,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(
    **loader,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# From scratch, a short run needs a larger step than fine-tuning's 1e-4.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=30),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[max_epochs - 2], gamma=0.1),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
schedule_recipe = None  # a short run from scratch: no published schedule
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_epochs))
randomness = dict(seed=0)
