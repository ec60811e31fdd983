# UPerNet + FCN auxiliary head on a SwinV2Backbone for ADE20K: the Swin V2 paper
# (arXiv 2111.09883v2, A1.2 and A2.1) uses UPerNet and follows mmsegmentation; the heads
# are the V1 Swin recipe's (upernet_swin.py; configs/README.md, Swin V2).
_base_ = ['./upernet_swin.py', './swinv2_backbone.py']
custom_imports = dict(imports=['swin_mm', 'swin_mm.optim'], allow_failed_imports=False)
model = dict(
    # "Stochastic depth with ratio of 0.3" (A1.2 for T/S/B, A2.1 for L).
    backbone=dict(_delete_=True, drop_path_rate=0.3, **_base_.swinv2_backbone))
