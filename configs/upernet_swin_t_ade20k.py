_base_ = ['./upernet_swin-t-p4-w7_8xb2-160k_ade20k-512x512.py']
