# The embedded demo (`make demo`): the UPerNet Swin-T recipe (the _base_ below, short
# name upernet_swin_t_ade20k.py) scaled down to train from scratch in a few minutes on 2
# CPU processes, on the synthetic ADE20K-layout data of tools/make_synthetic_data.py
# (64x64 images, background + 4 shape classes, written as ADE ids 1-5 in ADE20K's layout
# and read by mmseg's BaseSegDataset with ADE20K's file settings and the shapes' names).
# Everything not overridden here (UPerNet + FCN auxiliary head, AdamW with no decay on
# norms/position tables, warmup then poly, IoUMetric, ms+flip TTA) is the recipe's.
_base_ = ['../upernet_swin-t-p4-w7_8xb2-160k_ade20k-512x512.py']

data_root = 'work_dirs/demo/data/ADEChallengeData2016'
image_size = 64
crop_size = (image_size, image_size)
# The recipe's test scale keeps ADE20K's 4:1 bound on the long side.
test_scale = (4 * image_size, image_size)
max_iters = 600
val_interval = 100
batch_size = 4  # per process; the demo runs 2 processes
# Only the classes the synthetic data uses (a 150-way head would spend the short run
# pushing down 145 absent classes), under their own names: ADE20KDataset would name them
# wall, building, sky, floor, tree, so the dataset is BaseSegDataset with ADE20K's files.
classes = ('background', 'circle', 'square', 'triangle', 'striped_hexagon')
num_classes = len(classes)
# RGB, the shapes' own colours (scenes.SHAPE_CLASSES holds them in BGR).
palette = [[120, 120, 120], [210, 40, 40], [60, 190, 50], [40, 90, 200], [220, 200, 30]]
dataset = dict(type='BaseSegDataset', img_suffix='.jpg', seg_map_suffix='.png',
               reduce_zero_label=True, data_root=data_root,
               metainfo=dict(classes=classes, palette=palette))

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        embed_dims=32,
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 4, 8),
        # 64 / 4 = 16, 8, 4, 2 tokens per side: windows of 4 fit the first three stages.
        window_size=4,
        drop_path_rate=0.1,
        init_cfg=None),  # from scratch: no download
    decode_head=dict(in_channels=[32, 64, 128, 256], channels=64, num_classes=num_classes),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=num_classes))

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
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
img_ratios = [0.75, 1.0, 1.25]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ]),
]
# Tiny images: loading in the training process is faster than worker processes.
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=batch_size, **loader,
    dataset=dict(**dataset, pipeline=train_pipeline))
val_dataloader = dict(**loader, dataset=dict(**dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader

# From scratch, a short run needs a larger step than fine-tuning's 6e-5.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
warmup_iters = 30
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
schedule_recipe = None  # a short run from scratch: no published schedule
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
