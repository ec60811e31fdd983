# SwinBackbone with the arguments every published recipe shares (configs/README.md: patch 4,
# window 7 at 224 pretraining, mlp_ratio 4, qkv bias, no dropout, no absolute position
# embedding, LN, all four stages out). The model bases wrap a detector or segmentor around
# it; leaf configs set the architecture (embed_dims, depths, num_heads: a size of
# swin_mm.models.ARCH_ZOO) and init_cfg.
custom_imports = dict(imports=['swin_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        type='SwinBackbone',
        pretrain_img_size=224,
        patch_size=4,
        window_size=7,
        mlp_ratio=4,
        strides=(4, 2, 2, 2),
        out_indices=(0, 1, 2, 3),
        qkv_bias=True,
        qk_scale=None,
        patch_norm=True,
        drop_rate=0.,
        attn_drop_rate=0.,
        use_abs_pos_embed=False,
        frozen_stages=-1,
        act_cfg=dict(type='GELU'),
        norm_cfg=dict(type='LN', requires_grad=True),
        with_cp=False))  # the official READMEs: set with_cp=True to save memory
