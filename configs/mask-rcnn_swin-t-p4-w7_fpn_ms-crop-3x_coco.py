# Mask R-CNN Swin-T, 3x, multi-scale + crop, ImageNet-1K init:
# SwinTransformer/Swin-Transformer-Object-Detection@c7b2011
# (configs/swin/mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_adamw_3x_coco.py),
# translated to mmdet 3.x. Published: 46.0 box AP / 41.6 mask AP on val2017.
# Sources, metrics and the differences from mmdet 3.x's own Swin Mask R-CNN: configs/README.md.
# Short name: mask_rcnn_swin_t_coco_3x.py.
_base_ = [
    '_base_/models/mask_rcnn_swin_fpn.py', '_base_/datasets/coco_instance_ms_crop.py',
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
