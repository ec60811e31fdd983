# Mask R-CNN Swin-S, 3x (Swin-Transformer-Object-Detection@c7b2011,
# configs/swin/mask_rcnn_swin_small_patch4_window7_mstrain_480-800_adamw_3x_coco.py):
# 48.5 box AP / 43.3 mask AP on val2017. configs/README.md.
# Short name: mask_rcnn_swin_s_coco_3x.py.
_base_ = './mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_small_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        depths=[2, 2, 18, 2],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
