_base_ = ['./upernet_swin-s-p4-w7_8xb2-160k_ade20k-512x512.py']
