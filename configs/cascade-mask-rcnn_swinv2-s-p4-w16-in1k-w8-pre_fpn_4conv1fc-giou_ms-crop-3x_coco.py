# Cascade Mask R-CNN SwinV2-S, window 16, 3x, ImageNet-1K init (Swin V2 paper
# arXiv 2111.09883v2, A1.2): SwinV2-T's recipe with the S depths and checkpoint. No
# detection result for this size is published. configs/README.md, Swin V2.
# Short name: cascade_mask_rcnn_swinv2_s_coco_3x.py.
_base_ = './cascade-mask-rcnn_swinv2-t-p4-w16-in1k-w8-pre_fpn_4conv1fc-giou_ms-crop-3x_coco.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_small_patch4_window8_256.pth'  # noqa
model = dict(
    backbone=dict(depths=[2, 2, 18, 2], init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
