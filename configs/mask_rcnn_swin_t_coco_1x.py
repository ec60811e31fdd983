_base_ = ['./mask-rcnn_swin-t-p4-w7_fpn_ms-crop-1x_coco.py']
