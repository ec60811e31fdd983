# SwinV2Backbone with the arguments every Swin V2 recipe here shares (configs/README.md,
# Swin V2): patch 4, mlp_ratio 4, q and v biases, no dropout, LN, all four stages out,
# nothing frozen, no gradient checkpointing. The V2 model bases replace their V1
# backbone with it (`_delete_`); leaf configs set the size (ARCH_ZOO['swinv2']), window,
# pretrained window, drop path and init_cfg.
swinv2_backbone = dict(
    type='SwinV2Backbone',
    patch_size=4,
    mlp_ratio=4,
    strides=(4, 2, 2, 2),
    out_indices=(0, 1, 2, 3),
    qkv_bias=True,
    patch_norm=True,
    drop_rate=0.,
    attn_drop_rate=0.,
    frozen_stages=-1,
    act_cfg=dict(type='GELU'),
    norm_cfg=dict(type='LN'),
    with_cp=False)  # set with_cp=True to save memory
