# Cascade Mask R-CNN SwinV2-T, window 16, 3x, multi-scale + crop, ImageNet-1K
# init: Swin V2 paper (arXiv 2111.09883v2) A1.2, on the V1 Swin cascade recipe.
# Published: Table 1 (the position-bias ablation) gives 51.1 box AP at window 16 with
# log-spaced CPB; no other SwinV2-T/S/B detection result is published.
# Sources and every choice where the paper is silent: configs/README.md, Swin V2.
# Short name: cascade_mask_rcnn_swinv2_t_coco_3x.py.
_base_ = [
    '_base_/models/cascade_mask_rcnn_swinv2_fpn.py', '_base_/datasets/coco_instance_ms_crop.py',
    '_base_/schedules/swinv2_coco_adamw_3x.py', '_base_/runtimes/det.py'
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
        # The checkpoint's window: it scales the position-bias coordinates.
        pretrained_window_size=8,
        # The paper gives none for COCO; the V1 cascade recipe's (0.2 T/S, 0.3 B).
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
