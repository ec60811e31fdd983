_base_ = ['./htcpp_swin-b-p4-w12-in22k-384x384-pre_fpn_instaboost-ms-400-1400-6x_coco.py']
