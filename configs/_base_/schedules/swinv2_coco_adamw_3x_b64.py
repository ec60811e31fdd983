# Swin V2 paper (arXiv 2111.09883v2) A2.1, HTC++ SwinV2-L: AdamW, learning rate 4e-4
# at batch 64, weight decay 0.05, 3x schedule, backbone learning rate x0.1 (0.1 times
# the heads' rate); 36 epochs, x0.1 at 27 and 33 as coco-3x, and
# coco-3x's 500-iteration linear warmup from 0.001 (the paper gives none). Official V2
# no-weight-decay rules; no layer-wise decay (the paper names none for HTC++).
_base_ = './swinv2_coco_adamw_3x.py'
optim_wrapper = dict(
    optimizer=dict(lr=4e-4),
    paramwise_cfg=dict(decay_rate=1.0, backbone_lr_mult=0.1))
schedule_recipe = 'swinv2-htcpp-3x'
auto_scale_lr = dict(enable=False, base_batch_size=64)
