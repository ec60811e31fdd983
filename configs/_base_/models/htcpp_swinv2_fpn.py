# HTC++ on a SwinV2Backbone + FPN (Swin V2 paper arXiv 2111.09883v2, A2.1: "HTC++"
# as defined in the Swin V1 paper). Everything but the backbone is the V1 HTC++ base
# (htcpp_swin_fpn.py: 4conv1fc heads, HTC's semantic branch, soft-NMS on the final
# detections), whose choices where the papers are silent configs/README.md lists.
_base_ = ['./htcpp_swin_fpn.py', './swinv2_backbone.py']
custom_imports = dict(imports=['swin_mm', 'swin_mm.tta', 'swin_mm.optim'],
                      allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        # The V2 paper gives no drop path for HTC++; the V1 paper's 0.2 "for all Swin
        # Transformer models", as the V1 HTC++ configs.
        drop_path_rate=0.2,
        # HTC++'s "extra global self-attention layer appended at the output of last
        # stage" (V1 paper A2.2); the V2 paper does not say it dropped it.
        global_attn=True,
        **_base_.swinv2_backbone))
