_base_ = ['./upernet_swin-l-p4-w12-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py']
