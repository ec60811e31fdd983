_base_ = ['./htcpp_swin-l-p4-w12-in22k-384x384-pre_fpn_instaboost-ms-400-1400-3x_coco.py']
