# UPerNet + FCN auxiliary head on a SwinBackbone for ADE20K:
# SwinTransformer/Swin-Transformer-Semantic-Segmentation@87e6f90, translated to mmseg 1.x
# (configs/README.md).
# The architecture (embed_dims, depths, num_heads) and the heads' in_channels are set
# by each leaf config, because they are what distinguishes T/S/B/L.
_base_ = ['./swin_backbone.py']

norm_cfg = dict(type='SyncBN', requires_grad=True)
num_classes = 150
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(512, 512)),  # = crop size; the 640 configs override it
    backbone=dict(
        # The Swin repository and mmseg 1.x use 0.3 for every UPerNet-Swin; the paper
        # (A2.3) says 0.2. Followed the repository, whose released models match its
        # README (configs/README.md, drop path).
        drop_path_rate=0.3),
    decode_head=dict(
        type='UPerHead',
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_index=2,  # stage 3
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
