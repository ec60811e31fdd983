_base_ = ['./upernet_swinv2-l-p4-w40-in22k-w12-pre_16xb4-40k_ade20k-640x640.py']
