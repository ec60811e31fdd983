_base_ = ['./htcpp_swinv2-l-p4-w32-in22k-w12-pre_fpn_instaboost-lsj-1536_64xb1-3x_coco_w48-test.py']
