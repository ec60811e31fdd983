# UPerNet Swin-B, ADE20K 640x640, 160k, ImageNet-22K init (Swin paper arXiv 2103.14030
# A2.3 / Table 3 "Swin-B‡": 51.6 ms mIoU; microsoft/Swin-Transformer README @f82860b:
# 50.04 ss / 51.66 ms+flip). No official config was released: the
# Swin-Transformer-Semantic-Segmentation@87e6f90 recipe with the paper's 640 crop and
# 22K weights (configs/README.md). Short name: upernet_swin_b_22k_ade20k_640.py.
_base_ = [
    '_base_/models/upernet_swin.py', '_base_/datasets/ade20k_640.py',
    '_base_/schedules/ade20k_adamw_160k.py', '_base_/runtimes/seg.py'
]
# Window and checkpoint are not published for the 640 models. The authors (microsoft/
# Swin-Transformer#9): "We use 12 in 384x384 size in our experiments, though 7 also
# works", so window 12 with the 384x384 IN-22K checkpoint.
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window12_384_22k.pth'  # noqa
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(
        pretrain_img_size=384,
        window_size=12,
        embed_dims=128,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        # drop_path_rate 0.3 from the base (the Swin segmentation repository and mmseg 1.x,
        # also their 22K configs); the paper says 0.2. configs/README.md, drop path.
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
