"""Official detection/segmentation releases (Swin-Det, mmdet 2.x / Swin-Seg, mmseg 0.x):
after conversion the whole checkpoint loads strictly into mmdet 3.x Cascade Mask R-CNN /
mmseg 1.x UPerNet models built from the stock configs with SwinBackbone."""
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from helpers import SMALL
from swin_layouts import official_from_timm, timm_swin
from swin_mm.commands.swin2mm import main

# Head/neck key names of the released 2.x-era checkpoints, from the mmdet 2.x / mmseg 0.x
# module attribute names (RPNHead.rpn_conv/rpn_cls/rpn_reg, ConvFCBBoxHead.shared_convs/
# shared_fcs/fc_cls/fc_reg with SyncBN 'bn', FCNMaskHead.convs/upsample/conv_logits,
# FPN lateral_convs/fpn_convs, UPerHead psp_modules/bottleneck/lateral_convs/fpn_convs/
# fpn_bottleneck/conv_seg, FCNHead convs/conv_seg). Written out here, not read from 3.x.
DET_2X_KEYS = [
    'neck.lateral_convs.0.conv.weight', 'neck.fpn_convs.3.conv.bias',
    'rpn_head.rpn_conv.weight', 'rpn_head.rpn_cls.bias', 'rpn_head.rpn_reg.weight',
    'roi_head.bbox_head.0.shared_convs.0.conv.weight',
    'roi_head.bbox_head.1.shared_convs.3.bn.running_var',
    'roi_head.bbox_head.2.shared_convs.2.bn.num_batches_tracked',
    'roi_head.bbox_head.2.shared_fcs.0.weight', 'roi_head.bbox_head.0.fc_cls.weight',
    'roi_head.bbox_head.1.fc_reg.bias', 'roi_head.mask_head.0.convs.3.conv.weight',
    'roi_head.mask_head.1.upsample.weight', 'roi_head.mask_head.2.conv_logits.bias',
]
SEG_0X_KEYS = [
    'decode_head.conv_seg.weight', 'decode_head.psp_modules.3.1.conv.weight',
    'decode_head.psp_modules.0.1.bn.running_mean', 'decode_head.bottleneck.conv.weight',
    'decode_head.lateral_convs.2.bn.weight', 'decode_head.fpn_convs.0.conv.weight',
    'decode_head.fpn_bottleneck.bn.num_batches_tracked', 'auxiliary_head.convs.0.conv.weight',
    'auxiliary_head.conv_seg.bias',
]


def _config(package, pattern):
    root = os.path.join(os.path.dirname(__import__(package).__file__), '.mim', 'configs')
    return glob.glob(os.path.join(root, pattern))[0]


def _cascade_mask_rcnn():
    """The stock 3.x cascade 4conv1fc-GIoU recipe (the Swin-Det heads) with SwinBackbone."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(_config(
        'mmdet', 'convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'))
    cfg.model.backbone = dict(type='SwinBackbone', drop_path_rate=0.0, **SMALL)
    cfg.model.neck.in_channels = [32, 64, 128, 256]
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg.model)


def _upernet():
    from mmseg.registry import MODELS
    cfg = Config.fromfile(_config(
        'mmseg', 'swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'))
    cfg.model.backbone = dict(type='SwinBackbone', drop_path_rate=0.0, **SMALL)
    cfg.model.decode_head.in_channels = [32, 64, 128, 256]
    cfg.model.auxiliary_head.in_channels = 128
    cfg.model.data_preprocessor = dict(type='SegDataPreProcessor')
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('build,release_keys', [(_cascade_mask_rcnn, DET_2X_KEYS),
                                                (_upernet, SEG_0X_KEYS)])
def test_release_checkpoint_loads_strictly_into_3x_model(build, release_keys, tmp_path, capsys):
    model = build()
    others = {k: v for k, v in model.state_dict().items() if not k.startswith('backbone.')}
    assert set(release_keys) <= set(others)  # 2.x / 0.x head names are the 3.x / 1.x names
    official = official_from_timm(timm_swin(SMALL, 224))
    backbone = {k: v for k, v in official.items()
                if not k.startswith(('head.', 'norm.')) and 'attn_mask' not in k}
    backbone.update({f'norm{i}.{p}': torch.rand(32 * 2 ** i) for i in range(4)
                     for p in ('weight', 'bias')})
    release = {'backbone.' + k: v for k, v in backbone.items()}
    release.update({k: torch.rand_like(v.float()).to(v.dtype) for k, v in others.items()})
    src, dst = tmp_path / 'release.pth', tmp_path / 'converted.pth'
    torch.save({'state_dict': release, 'meta': {'epoch': 36}}, src)

    assert main([str(src), str(dst)]) == 0
    assert 'layout: official-det' in capsys.readouterr().out
    load_checkpoint(model, str(dst), strict=True)  # what load_from does
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], release[k]) for k in others)
    assert torch.equal(loaded['backbone.norm2.weight'], release['backbone.norm2.weight'])
