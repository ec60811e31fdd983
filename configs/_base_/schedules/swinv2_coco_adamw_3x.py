# Swin V2 paper (arXiv 2111.09883v2) A1.2, COCO: AdamW, learning rate 1e-4, weight
# decay 0.05, batch 16, a 3x schedule, in mmdetection: the coco-3x schedule (36 epochs,
# x0.1 at 27 and 33; the paper gives no warmup, this keeps the 500-iteration one of the
# V1 recipes). Weight
# decay follows the official V2 code's rules (no decay for cpb_mlp, logit_scale, 1-D
# parameters and biases) through SwinLayerDecayOptimWrapperConstructor; A1.2 names
# layer-wise decay for ADE20K only, so decay_rate 1 (configs/README.md, Swin V2).
_base_ = './coco_adamw_3x.py'
optim_wrapper = dict(
    constructor='SwinLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(_delete_=True, decay_rate=1.0))
