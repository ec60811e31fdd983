# HTC++ "6x" (Swin paper arXiv 2103.14030, A2.2): 72 epochs, x0.1 at epochs 63 and 69;
# otherwise the 3x schedule (the paper gives no optimizer for HTC++; its detection
# ablation setting, also A2.2, is AdamW 1e-4 / 0.05 / batch 16, as in
# Swin-Transformer-Object-Detection). configs/README.md.
_base_ = './coco_adamw_3x.py'
max_epochs = 72
schedule_recipe = 'coco-6x'
param_scheduler = [
    _base_.warmup_scheduler,
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[63, 69],
         gamma=0.1),
]
train_cfg = dict(max_epochs=max_epochs)
