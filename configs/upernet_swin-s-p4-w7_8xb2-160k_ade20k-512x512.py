# UPerNet Swin-S, ADE20K 512x512, 160k, ImageNet-1K init
# (Swin-Transformer-Semantic-Segmentation@87e6f90): 47.64 / 49.47 mIoU ss / ms+flip.
# configs/README.md. Short name: upernet_swin_s_ade20k.py.
_base_ = './upernet_swin-t-p4-w7_8xb2-160k_ade20k-512x512.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_small_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        depths=[2, 2, 18, 2],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
