# Cascade Mask R-CNN Swin-T, 3x, multi-scale + crop, GIoU, 4conv1fc, ImageNet-1K init:
# SwinTransformer/Swin-Transformer-Object-Detection@c7b2011, translated to mmdet 3.x.
# Published: 50.4 box AP / 43.7 mask AP on val2017 (paper Table 2b: 50.5 / 43.7).
# Sources, metrics and the choices where they disagree: configs/README.md.
# Short name: cascade_mask_rcnn_swin_t_coco_3x.py.
_base_ = [
    '_base_/models/cascade_mask_rcnn_swin_fpn.py', '_base_/datasets/coco_instance_ms_crop.py',
    '_base_/schedules/coco_adamw_3x.py', '_base_/runtimes/det.py'
]
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
