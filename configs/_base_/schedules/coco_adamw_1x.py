# "1x" of SwinTransformer/Swin-Transformer-Object-Detection@c7b2011 (Mask R-CNN Swin-T 1x):
# 12 epochs, x0.1 at epochs 8 and 11 (its schedule_1x), otherwise the 3x schedule (AdamW
# 1e-4 / wd 0.05, 500-iteration warmup from 0.001). configs/README.md.
_base_ = './coco_adamw_3x.py'
max_epochs = 12
schedule_recipe = 'coco-1x'
param_scheduler = [
    _base_.warmup_scheduler,
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[8, 11],
         gamma=0.1),
]
train_cfg = dict(max_epochs=max_epochs)
