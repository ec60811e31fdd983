# Cascade Mask R-CNN Swin-S, 3x (Swin-Transformer-Object-Detection@c7b2011): 51.9 / 45.0
# box / mask AP (paper Table 2b: 51.8 / 44.7; the numbers are only reported, nothing in
# the config depends on them). configs/README.md. Short name:
# cascade_mask_rcnn_swin_s_coco_3x.py.
_base_ = './cascade-mask-rcnn_swin-t-p4-w7_fpn_4conv1fc-giou_ms-crop-3x_coco.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_small_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        depths=[2, 2, 18, 2],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
