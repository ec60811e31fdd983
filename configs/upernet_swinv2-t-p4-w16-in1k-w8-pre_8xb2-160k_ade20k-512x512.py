# UPerNet SwinV2-T, ADE20K 512x512, window 16, 160k iterations, layer-wise
# learning-rate decay 0.95, drop path 0.3, ImageNet-1K init: Swin V2 paper
# (arXiv 2111.09883v2) A1.2. No mIoU for this size is published outside the paper's
# ablation tables. Sources and every choice where the paper is silent:
# configs/README.md, Swin V2. Short name: upernet_swinv2_t_ade20k.py.
_base_ = [
    '_base_/models/upernet_swinv2.py', '_base_/datasets/ade20k_512.py',
    '_base_/schedules/swinv2_ade20k_adamw_160k.py', '_base_/runtimes/seg.py'
]
# The 256x256 window-8 ImageNet-1K file, transferred to window 16 by the log-spaced
# position bias (configs/README.md, Swin V2: why not the window-16 file).
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_tiny_patch4_window8_256.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=16,
        pretrained_window_size=8,  # the checkpoint's window
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
