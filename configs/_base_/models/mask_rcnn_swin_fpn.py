# Mask R-CNN on a SwinBackbone + FPN (SwinTransformer/Swin-Transformer-Object-Detection@c7b2011,
# configs/_base_/models/mask_rcnn_swin_fpn.py, translated to mmdet 3.x; configs/README.md).
# The architecture (embed_dims, depths, num_heads, drop_path_rate) and the neck's
# in_channels are set by each leaf config. The values are mmdet's Mask R-CNN base (also
# mmdet 3.x's): L1 box losses, a Shared2FC box head, low-quality matches in both assigners.
# Built on the Cascade Mask R-CNN base, whose preprocessing, FPN, anchors, RPN assignment,
# test settings, custom_imports and tta_model are also Mask R-CNN's; the RPN box loss, the
# RoI head and the proposal and R-CNN training settings are replaced.
_base_ = ['./cascade_mask_rcnn_swin_fpn.py']

num_classes = 80
model = dict(
    type='MaskRCNN',
    rpn_head=dict(loss_bbox=dict(_delete_=True, type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        _delete_=True,
        type='StandardRoIHead',
        bbox_roi_extractor=_base_.model.roi_head.bbox_roi_extractor,
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=num_classes,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        mask_roi_extractor=_base_.model.roi_head.mask_roi_extractor,
        mask_head=_base_.model.roi_head.mask_head),
    train_cfg=dict(
        rpn=dict(allowed_border=-1),
        rpn_proposal=dict(max_per_img=1000),
        rcnn=dict(
            _delete_=True,
            assigner=dict(
                type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                add_gt_as_proposals=True),
            mask_size=28,
            pos_weight=-1,
            debug=False)))
