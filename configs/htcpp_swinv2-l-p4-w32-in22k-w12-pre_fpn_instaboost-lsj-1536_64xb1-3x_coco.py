# HTC++ SwinV2-L, 1536x1536 input, window 32, 3x at batch 64, ImageNet-22K init: Swin V2
# paper (arXiv 2111.09883v2) A2.1, Table 3: 58.8 box AP / 51.1 mask AP on COCO minival
# tested at 1100 with window 32 (this config); window 48 on the same checkpoint:
# htcpp_swinv2_l_coco_w48_test.py. Sources and every choice where the paper is silent:
# configs/README.md, Swin V2. Short name: htcpp_swinv2_l_coco.py.
_base_ = [
    '_base_/models/htcpp_swinv2_fpn.py', '_base_/datasets/coco_htcpp_lsj_1536.py',
    '_base_/schedules/swinv2_coco_adamw_3x_b64.py', '_base_/runtimes/det.py'
]
# The ImageNet-22K file pretrained at 192x192 with window 12 (the one 22K SwinV2-L file).
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_large_patch4_window12_192_22k.pth'  # noqa
model = dict(
    # Large-scale jitter: every batch padded to the 1536x1536 input (stuff maps too).
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size={{_base_.image_size}}, pad_mask=True,
             pad_seg=True)]),
    backbone=dict(
        embed_dims=192,
        depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48],
        window_size=32,
        # The checkpoint's windows: 12, except stage 3, whose 6x6 map at 192x192 the
        # official code attended whole (as its 22K->1K configs: [12, 12, 12, 6]).
        pretrained_window_size=[12, 12, 12, 6],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[192, 384, 768, 1536]))
