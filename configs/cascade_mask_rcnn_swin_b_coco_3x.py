_base_ = ['./cascade-mask-rcnn_swin-b-p4-w7_fpn_4conv1fc-giou_ms-crop-3x_coco.py']
