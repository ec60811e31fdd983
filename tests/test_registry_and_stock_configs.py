"""SwinBackbone through the mmdet/mmseg/mmpretrain registries and their stock Swin configs."""
import glob
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from helpers import SMALL, max_abs_diff, randomize_


def _package_configs(package: str, pattern: str):
    root = os.path.join(os.path.dirname(__import__(package).__file__), '.mim', 'configs')
    return sorted(glob.glob(os.path.join(root, pattern)))


DET_CONFIGS = _package_configs('mmdet', 'swin/*.py')
SEG_CONFIGS = _package_configs('mmseg', 'swin/*.py')


@pytest.mark.parametrize('scope,registry_module', [
    ('mmdet', 'mmdet.registry'), ('mmseg', 'mmseg.registry'), ('mmpretrain', 'mmpretrain.registry')])
def test_builds_under_each_default_scope(scope, registry_module):
    registry = __import__(registry_module, fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        backbone = registry.build(dict(type='SwinBackbone', out_indices=(3,), **SMALL))
    assert type(backbone).__name__ == 'SwinBackbone'
    assert backbone(torch.zeros(1, 3, 64, 64))[0].shape == (1, 256, 2, 2)


def test_custom_imports_in_a_fresh_interpreter(tmp_path):
    config = tmp_path / 'cfg.py'
    config.write_text(textwrap.dedent("""
        custom_imports = dict(imports=['swin_mm'], allow_failed_imports=False)
        default_scope = 'mmseg'
        model = dict(type='SwinBackbone', embed_dims=32, num_heads=(1, 2, 4, 8))
    """))
    script = textwrap.dedent(f"""
        from mmengine.config import Config
        from mmengine.registry import DefaultScope
        from mmseg.registry import MODELS
        cfg = Config.fromfile({str(config)!r})
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            print(type(MODELS.build(cfg.model)).__module__)
    """)
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'swin_mm.models.swin_backbone'


def _build(config_path, scope, registry, backbone_type):
    cfg = Config.fromfile(config_path)
    cfg.model.backbone.type = backbone_type
    cfg.model.backbone.init_cfg = None  # no downloads in tests
    cfg.model.backbone.drop_path_rate = 0.0
    if backbone_type == 'SwinBackbone':
        cfg.custom_imports = dict(imports=['swin_mm'], allow_failed_imports=False)
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(cfg.model)


def _check_stock_config(config_path, scope, registry, images):
    peer = _build(config_path, scope, registry, 'SwinTransformer')
    ours = _build(config_path, scope, registry, 'SwinBackbone')
    assert type(ours.backbone).__name__ == 'SwinBackbone'
    randomize_(peer.backbone)
    # A released checkpoint of this config is exactly the peer model's state dict.
    ours.load_state_dict(peer.state_dict(), strict=True)
    peer.eval()
    ours.eval()
    x = images(1, 97, 130, channels=ours.backbone.in_channels)  # 6 for change detection
    with torch.no_grad():
        assert max_abs_diff(ours.backbone(x), peer.backbone(x)) <= 1e-5
        assert max_abs_diff(ours.extract_feat(x), peer.extract_feat(x)) <= 1e-4


# The quick tier (make test) checks the smallest stock config of each; make test-all all.
QUICK_STOCK = ('mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
               'swin-tiny-patch4-window7_upernet_1xb8-20k_levir-256x256.py')


def _tiered(paths):
    return [pytest.param(p, id=os.path.basename(p),
                         marks=() if os.path.basename(p) in QUICK_STOCK else pytest.mark.slow)
            for p in paths]


@pytest.mark.parametrize('config_path', _tiered(DET_CONFIGS))
def test_stock_mmdet_swin_config(config_path, images):
    from mmdet.registry import MODELS
    _check_stock_config(config_path, 'mmdet', MODELS, images)


@pytest.mark.parametrize('config_path', _tiered(SEG_CONFIGS))
def test_stock_mmseg_swin_config(config_path, images):
    from mmseg.registry import MODELS
    _check_stock_config(config_path, 'mmseg', MODELS, images)


def test_stock_configs_found():
    assert len(DET_CONFIGS) >= 4 and len(SEG_CONFIGS) >= 8
