# HTC++ Swin-B, 6x (72 epochs, steps 63/69), ImageNet-22K init (Swin paper arXiv 2103.14030
# A2.2, Table 2c: 56.4 box AP / 49.1 mask AP on minival). No official config or
# checkpoint exists; configs/README.md says where each value comes from.
# Short name: htcpp_swin_b_coco.py.
_base_ = [
    '_base_/models/htcpp_swin_fpn.py', '_base_/datasets/coco_htcpp.py',
    '_base_/schedules/coco_adamw_6x.py', '_base_/runtimes/det.py'
]
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window12_384_22k.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=128,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
