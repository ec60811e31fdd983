# UPerNet Swin-L, ADE20K 640x640, 160k, ImageNet-22K init (Swin paper Table 3 "Swin-L‡":
# 53.5 ms mIoU; microsoft/Swin-Transformer README @f82860b: 52.05 ss / 53.53 ms+flip).
# No official config was released (configs/README.md).
# Short name: upernet_swin_l_22k_ade20k_640.py.
_base_ = './upernet_swin-b-p4-w12-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=192,
        num_heads=[6, 12, 24, 48],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))
