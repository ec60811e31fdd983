# Cascade Mask R-CNN SwinV2-B, window 16, 3x, ImageNet-1K init (Swin V2 paper
# arXiv 2111.09883v2, A1.2): SwinV2-S's recipe with the B widths and checkpoint. No
# detection result for this size is published. configs/README.md, Swin V2.
# Short name: cascade_mask_rcnn_swinv2_b_coco_3x.py.
_base_ = './cascade-mask-rcnn_swinv2-s-p4-w16-in1k-w8-pre_fpn_4conv1fc-giou_ms-crop-3x_coco.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_base_patch4_window8_256.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=128,
        num_heads=[4, 8, 16, 32],
        drop_path_rate=0.3,  # the V1 cascade Swin-B's (the paper gives none for COCO)
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
