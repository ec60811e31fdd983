# HTC++ data of the Swin V2 paper (arXiv 2111.09883v2, A2.1, SwinV2-L): InstaBoost and
# a 1536x1536 input with random scale [0.1, 2.0], i.e. large-scale jitter as mmdet 3.x
# writes it (configs/common/lsj-100e_coco-instance.py: resize the image to fit 1536 x a
# random ratio, crop to 1536x1536, drop boxes cropped to nothing; the model pads the batch
# to 1536x1536). Plus HTC's COCO-stuff maps, as the V1 HTC++ data (coco_htcpp.py).
_base_ = './coco_htcpp.py'
image_size = (1536, 1536)
# Table 3's test size "1100", read as the same kind of size as its training "1536":
# the image resized to fit 1100x1100 (configs/README.md, Swin V2: a choice).
test_scale = (1100, 1100)
train_pipeline = [
    _base_.train_pipeline[0],  # LoadImageFromFile
    _base_.train_pipeline[1],  # InstaBoost, mmdet's values as the V1 HTC++ data
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# The V1 HTC++ test pipeline at this test scale.
test_pipeline = [
    _base_.test_pipeline[0],
    dict(type='Resize', scale=test_scale, keep_ratio=True),
] + _base_.test_pipeline[2:]
# Batch 64 as 64 GPUs x 1 image (the paper gives the total only).
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
