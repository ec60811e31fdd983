# Swin V2 paper (arXiv 2111.09883v2) A1.2, ADE20K (T/S/B): AdamW, 160K iterations at
# batch 16, layer-wise learning-rate decay 0.95, linear learning-rate decay. The learning
# rate 6e-5, weight decay 0.05 and 1500-iteration linear warmup are as this config's
# author recalls A1.2 and could not re-read there: check them (configs/README.md, Swin
# V2). The schedule is the ade20k-160k formula (poly power 1 = linear decay to 0; warmup
# from 1e-6 as the V1 recipe). The official V2 no-weight-decay rules replace the V1
# custom_keys.
_base_ = './ade20k_adamw_160k.py'
optim_wrapper = dict(
    constructor='SwinLayerDecayOptimWrapperConstructor',
    optimizer=dict(weight_decay=0.05),
    paramwise_cfg=dict(_delete_=True, decay_rate=0.95))
