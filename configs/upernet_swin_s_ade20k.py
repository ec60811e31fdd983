# UPerNet Swin-S, ADE20K 512x512, 160k, ImageNet-1K init (recipe [B]): 47.64 / 49.47.
_base_ = './upernet_swin_t_ade20k.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_small_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        depths=[2, 2, 18, 2],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
