# Cascade Mask R-CNN Swin-S, 3x (recipe [A]): 51.9 / 45.0 (paper Table 2b: 51.8 / 44.7;
# followed neither: the numbers are only reported).
_base_ = './cascade_mask_rcnn_swin_t_coco_3x.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_small_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        depths=[2, 2, 18, 2],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
