# UPerNet SwinV2-B, ADE20K 512x512, window 16, 160k (Swin V2 paper arXiv 2111.09883v2,
# A1.2): SwinV2-S's recipe with the B widths and checkpoint. configs/README.md, Swin V2.
# Short name: upernet_swinv2_b_ade20k.py.
_base_ = './upernet_swinv2-s-p4-w16-in1k-w8-pre_8xb2-160k_ade20k-512x512.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_base_patch4_window8_256.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=128,
        num_heads=[4, 8, 16, 32],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
