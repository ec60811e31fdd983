# Swin V2 paper (arXiv 2111.09883v2) A2.1, ADE20K UPerNet SwinV2-L: AdamW, learning
# rate 6e-5, weight decay 0.05, linear decay with a 375-iteration linear warmup, batch
# 64, 40K iterations. Warmup from 1e-6
# as the V1 recipe (the paper gives no start); no layer-wise decay (A2.1 names none);
# the official V2 no-weight-decay rules. mmengine's schedulers span end - begin - 1
# steps, so end = N + 1 reproduces the mmcv formula exactly (tools/check_schedule.py).
_base_ = './swinv2_ade20k_adamw_160k.py'
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=1.0))
max_iters = 40000
warmup_iters = 375
schedule_recipe = 'swinv2-ade20k-40k'
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters + 1),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters + 1),
]
train_cfg = dict(max_iters=max_iters, val_interval=4000)
