# UPerNet Swin-B, ADE20K 512x512, 160k, ImageNet-1K init
# (Swin-Transformer-Semantic-Segmentation@87e6f90): 48.13 / 49.72 mIoU ss / ms+flip.
# configs/README.md. Short name: upernet_swin_b_ade20k.py.
_base_ = './upernet_swin-s-p4-w7_8xb2-160k_ade20k-512x512.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=128,
        num_heads=[4, 8, 16, 32],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
