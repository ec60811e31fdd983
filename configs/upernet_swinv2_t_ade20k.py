_base_ = ['./upernet_swinv2-t-p4-w16-in1k-w8-pre_8xb2-160k_ade20k-512x512.py']
