# UPerNet SwinV2-S, ADE20K 512x512, window 16, 160k (Swin V2 paper arXiv 2111.09883v2,
# A1.2): SwinV2-T's recipe with the S depths and checkpoint. configs/README.md, Swin V2.
# Short name: upernet_swinv2_s_ade20k.py.
_base_ = './upernet_swinv2-t-p4-w16-in1k-w8-pre_8xb2-160k_ade20k-512x512.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_small_patch4_window8_256.pth'  # noqa
model = dict(
    backbone=dict(depths=[2, 2, 18, 2], init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
