# UPerNet Swin-T, ADE20K 512x512, 160k iterations, ImageNet-1K init:
# SwinTransformer/Swin-Transformer-Semantic-Segmentation@87e6f90, translated to mmseg 1.x.
# Published: 44.51 mIoU single scale / 45.81 ms+flip. configs/README.md.
# Short name: upernet_swin_t_ade20k.py.
_base_ = [
    '_base_/models/upernet_swin.py', '_base_/datasets/ade20k_512.py',
    '_base_/schedules/ade20k_adamw_160k.py', '_base_/runtimes/seg.py'
]
# The repository's config has pretrained=None and its README passes the IN-1K file on
# the command line; this is that file, converted by SwinBackbone when loading.
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
