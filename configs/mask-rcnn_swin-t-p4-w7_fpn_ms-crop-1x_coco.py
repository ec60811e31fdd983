# Mask R-CNN Swin-T, 1x, multi-scale + crop, ImageNet-1K init, drop path 0.1:
# SwinTransformer/Swin-Transformer-Object-Detection@c7b2011
# (configs/swin/mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_adamw_1x_coco.py).
# Published: 43.7 box AP / 39.8 mask AP on val2017. mmdet 3.x's 1x Swin-T config differs
# (single-scale training, drop path 0.2: 42.7 / 39.3); configs/README.md.
# Short name: mask_rcnn_swin_t_coco_1x.py.
_base_ = './mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
model = dict(backbone=dict(drop_path_rate=0.1))
# "1x": 12 epochs, x0.1 at epochs 8 and 11 (the repository's schedule_1x steps); the
# optimizer and the 500-iteration warmup are the 3x schedule's.
max_epochs = 12
schedule_recipe = 'coco-1x'
param_scheduler = [
    _base_.warmup_scheduler,
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[8, 11],
         gamma=0.1),
]
train_cfg = dict(max_epochs=max_epochs)
