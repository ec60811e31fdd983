# Cascade Mask R-CNN Swin-B, 3x, ImageNet-1K init (Swin-Transformer-Object-Detection@c7b2011):
# 51.9 / 45.0 box / mask AP. configs/README.md. Short name:
# cascade_mask_rcnn_swin_b_coco_3x.py.
_base_ = './cascade-mask-rcnn_swin-s-p4-w7_fpn_4conv1fc-giou_ms-crop-3x_coco.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=128,
        num_heads=[4, 8, 16, 32],
        # The repository uses 0.3 for Swin-B (0.2 for T/S); the paper (A2.2) says 0.2 for
        # all. Followed the repository (configs/README.md, drop path).
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
