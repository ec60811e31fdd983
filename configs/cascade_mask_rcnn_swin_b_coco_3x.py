# Cascade Mask R-CNN Swin-B, 3x, ImageNet-1K init (recipe [A]): 51.9 / 45.0.
_base_ = './cascade_mask_rcnn_swin_s_coco_3x.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=128,
        num_heads=[4, 8, 16, 32],
        # [A] uses 0.3 for Swin-B (0.2 for T/S); the paper says 0.2 for all. Followed [A].
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
