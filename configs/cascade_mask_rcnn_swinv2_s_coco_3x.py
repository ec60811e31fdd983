_base_ = ['./cascade-mask-rcnn_swinv2-s-p4-w16-in1k-w8-pre_fpn_4conv1fc-giou_ms-crop-3x_coco.py']
