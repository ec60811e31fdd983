# UPerNet SwinV2-L, ADE20K 640x640, window 40, 40K iterations at batch 64, ImageNet-22K
# init: Swin V2 paper (arXiv 2111.09883v2) A2.1, Table 4: 55.9 mIoU (multi-scale test,
# tools/test.py --tta). Sources and every choice where the paper is silent:
# configs/README.md, Swin V2. Short name: upernet_swinv2_l_22k_ade20k_640.py.
_base_ = [
    '_base_/models/upernet_swinv2.py', '_base_/datasets/ade20k_640.py',
    '_base_/schedules/swinv2_ade20k_adamw_40k.py', '_base_/runtimes/seg.py'
]
# The ImageNet-22K file pretrained at 192x192 with window 12 (the one 22K SwinV2-L file).
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_large_patch4_window12_192_22k.pth'  # noqa
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(
        embed_dims=192,
        depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48],
        window_size=40,
        # The checkpoint's windows: 12, except stage 3, whose 6x6 map at 192x192 the
        # official code attended whole (as its 22K->1K configs: [12, 12, 12, 6]).
        pretrained_window_size=[12, 12, 12, 6],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))
# Batch 64 as 16 GPUs x 4 images (the paper gives the total only).
train_dataloader = dict(batch_size=4)
# Checkpoint and validate every 4000 iterations (a tenth of the run, as the 160k recipes).
default_hooks = dict(checkpoint=dict(interval=4000))
