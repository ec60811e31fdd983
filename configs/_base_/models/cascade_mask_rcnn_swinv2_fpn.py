# Cascade Mask R-CNN (4conv1fc SyncBN heads, GIoU) on a SwinV2Backbone + FPN: the Swin V2
# paper (arXiv 2111.09883v2, A1.2) trains its T/S/B ablations with "cascade mask R-CNN
# implemented in mmdetection"; it gives no heads, so these are the V1 Swin recipe's
# (cascade_mask_rcnn_swin_fpn.py; configs/README.md, Swin V2).
_base_ = ['./cascade_mask_rcnn_swin_fpn.py', './swinv2_backbone.py']
# swin_mm.optim registers SwinLayerDecayOptimWrapperConstructor (the official
# no-weight-decay rules of the V2 code, layer-wise learning-rate decay).
custom_imports = dict(imports=['swin_mm', 'swin_mm.tta', 'swin_mm.optim'],
                      allow_failed_imports=False)
model = dict(backbone=dict(_delete_=True, **_base_.swinv2_backbone))
