# ADE20K, 512x512 crops: SwinTransformer/Swin-Transformer-Semantic-Segmentation@87e6f90,
# translated to mmseg 1.x (configs/README.md).
# Child configs that move the data must also set the dataloaders' data_root, e.g.
# train_dataloader = dict(dataset=dict(data_root=data_root)), because a base file's
# variables are resolved before the child is read.
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016/'
crop_size = (512, 512)
# Long side of the train/test scale; the short side is the crop size.
test_scale = (2048, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=test_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    # After Resize: the ground truth is evaluated at the original resolution.
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
# Multi-scale + flip test (tools/test.py --tta). The Swin repository's --aug-test scales
# the test scale (2048, 512) by each ratio (mmcv MultiScaleFlipAug); mmseg 1.x instead
# scales the original image (Resize(scale_factor=r)). Followed the Swin repository: its
# ms+flip numbers were measured that way (configs/README.md, test-time augmentation).
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(test_scale[0] * r), int(test_scale[1] * r)),
                  keep_ratio=True) for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ]),
]
# Batch 16 as 8 GPUs x 2 images (samples_per_gpu=2, workers_per_gpu=4 in the Swin repo).
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
