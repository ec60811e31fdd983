"""SwinV2Backbone inside the project's Cascade Mask R-CNN and UPerNet configs: each model
builds through mmdet's / mmseg's registries with the backbone swapped in (a narrow one,
the heads' input channels adjusted, UPerNet's head width 64), computes its
training losses on a small synthetic batch (mmdet's own demo inputs; a random ADE20K-sized
label map), and every backbone parameter gets a finite gradient."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')
# A narrow backbone (the heads' input channels follow it) keeps the CPU test short.
V2_NARROW = dict(type='SwinV2Backbone', embed_dims=32, depths=(2, 2, 2, 2),
                 num_heads=(1, 2, 4, 8), window_size=8, pretrained_window_size=8,
                 drop_path_rate=0., out_indices=(0, 1, 2, 3), init_cfg=None)
CHANNELS = [32, 64, 128, 256]


def _model(config: str, scope: str):
    cfg = Config.fromfile(os.path.join(CONFIGS, config))
    cfg.model.backbone = V2_NARROW
    if scope == 'mmdet':
        cfg.model.neck.in_channels = CHANNELS
    else:
        cfg.model.decode_head.in_channels = CHANNELS
        cfg.model.auxiliary_head.in_channels = CHANNELS[2]
        cfg.model.decode_head.channels = cfg.model.auxiliary_head.channels = 64
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    model.init_weights()
    return model.train()


def _check_losses(model, data) -> None:
    torch.manual_seed(0)
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.slow
def test_cascade_mask_rcnn_with_swin_v2_computes_its_losses():
    from mmdet.testing import demo_mm_inputs
    model = _model('cascade-mask-rcnn_swin-t-p4-w7_fpn_4conv1fc-giou_ms-crop-3x_coco.py', 'mmdet')
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 160), (3, 97, 131)],
                          num_items=[3, 2], num_classes=80, with_mask=True)
    _check_losses(model, data)


@pytest.mark.slow
def test_upernet_with_swin_v2_computes_its_losses():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    model = _model('upernet_swin-t-p4-w7_8xb2-160k_ade20k-512x512.py', 'mmseg')
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for height, width in [(64, 96), (64, 96)]:
        inputs.append(torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, height, width), generator=gen))
        samples.append(sample)
    _check_losses(model, dict(inputs=inputs, data_samples=samples))
