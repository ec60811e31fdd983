"""The schedule check: every config's learning rate at every iteration vs the published recipe."""
import glob
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config

from swin_mm_dev.schedule_check import PUBLISHED, check_schedule, recipe_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, 'configs')
# Written from the sources (configs/README.md): Swin-Transformer-Object-Detection's 3x
# for the cascades and Mask R-CNN 3x, its 1x for Mask R-CNN Swin-T 1x, the microsoft/Swin-Transformer README's "3x" for HTC++ Swin-L, the
# paper's 6x (A2.2) for HTC++ Swin-B, Swin-Transformer-Semantic-Segmentation's 160k for
# every UPerNet.
RECIPE = {
    'mask_rcnn_swin_t_coco_1x': 'coco-1x',
    'mask_rcnn_swin_t_coco_3x': 'coco-3x',
    'mask_rcnn_swin_s_coco_3x': 'coco-3x',
    'cascade_mask_rcnn_swin_t_coco_3x': 'coco-3x',
    'cascade_mask_rcnn_swin_s_coco_3x': 'coco-3x',
    'cascade_mask_rcnn_swin_b_coco_3x': 'coco-3x',
    'htcpp_swin_b_coco': 'coco-6x',
    'htcpp_swin_l_coco': 'coco-3x',
    'upernet_swin_t_ade20k': 'ade20k-160k',
    'upernet_swin_s_ade20k': 'ade20k-160k',
    'upernet_swin_b_ade20k': 'ade20k-160k',
    'upernet_swin_b_22k_ade20k_640': 'ade20k-160k',
    'upernet_swin_l_22k_ade20k_640': 'ade20k-160k',
    # Swin V2 paper (arXiv 2111.09883v2): A1.2's 3x in mmdetection for the cascades, its
    # 160K linear decay (lr 6e-5, 1500-iteration warmup) for UPerNet T/S/B; A2.1 for L.
    'cascade_mask_rcnn_swinv2_t_coco_3x': 'coco-3x',
    'cascade_mask_rcnn_swinv2_s_coco_3x': 'coco-3x',
    'cascade_mask_rcnn_swinv2_b_coco_3x': 'coco-3x',
    'upernet_swinv2_t_ade20k': 'ade20k-160k',
    'upernet_swinv2_s_ade20k': 'ade20k-160k',
    'upernet_swinv2_b_ade20k': 'ade20k-160k',
    'htcpp_swinv2_l_coco': 'swinv2-htcpp-3x',
    'htcpp_swinv2_l_coco_w48_test': 'swinv2-htcpp-3x',
    'upernet_swinv2_l_22k_ade20k_640': 'swinv2-ade20k-40k',
}
_checked = {}


def _schedule_key(cfg):
    """What the learning rate depends on; configs sharing it share one full run."""
    return json.dumps([cfg.optim_wrapper.optimizer.to_dict(),
                       [s.to_dict() for s in cfg.param_scheduler],
                       cfg.train_cfg.to_dict()], sort_keys=True, default=str)


def test_every_config_names_its_recipe():
    """Each shipped config (alias or not) names the recipe its sources give."""
    shipped = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CONFIG_DIR, '*.py'))}
    assert shipped >= set(RECIPE)
    for path in glob.glob(os.path.join(CONFIG_DIR, '*.py')):
        cfg = Config.fromfile(path)
        assert recipe_of(cfg) in PUBLISHED
        name = os.path.basename(path)[:-3]
        if name in RECIPE:
            assert recipe_of(cfg) == RECIPE[name], name


# The quick tier (make test) checks one config per schedule family; make test-all all.
QUICK_SCHEDULES = ('cascade_mask_rcnn_swin_t_coco_3x', 'mask_rcnn_swin_t_coco_1x',
                   'htcpp_swin_b_coco', 'upernet_swin_t_ade20k',
                   'upernet_swinv2_l_22k_ade20k_640')


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=() if n in QUICK_SCHEDULES else pytest.mark.slow)
    for n in sorted(RECIPE)])
def test_config_schedule_matches_published(name):
    cfg = Config.fromfile(os.path.join(CONFIG_DIR, name + '.py'))
    key = (RECIPE[name], _schedule_key(cfg))
    if key not in _checked:
        _checked[key] = check_schedule(cfg)  # the recipe the config names
    report = _checked[key]
    assert report.recipe == RECIPE[name]
    assert report.iterations == {'coco-1x': 12 * 7330, 'coco-3x': 36 * 7330, 'coco-6x': 72 * 7330,
                                 'ade20k-160k': 160000, 'swinv2-htcpp-3x': 36 * 7330,
                                 'swinv2-ade20k-40k': 40000}[RECIPE[name]]
    assert report.max_rel_error < 1e-9, report


def test_published_formulas_at_recipe_points():
    """The reference itself, at points the recipe text states."""
    step = PUBLISHED['coco-3x'].lrs(7330)
    assert step[0] == pytest.approx(1e-4 * 0.001)           # warmup ratio 0.001
    assert step[250] == pytest.approx(1e-4 * (0.001 + 0.999 * 0.5))
    assert step[500] == pytest.approx(1e-4)                 # warmup is 500 iterations
    assert step[27 * 7330 - 1] == pytest.approx(1e-4)
    assert step[27 * 7330] == pytest.approx(1e-5)           # x0.1 at epoch 27
    assert step[33 * 7330] == pytest.approx(1e-6)           # and 33
    assert len(PUBLISHED['coco-6x'].lrs(7330)) == 72 * 7330
    assert PUBLISHED['coco-6x'].lrs(7330)[63 * 7330] == pytest.approx(1e-5)
    one_x = PUBLISHED['coco-1x'].lrs(7330)
    assert len(one_x) == 12 * 7330 and one_x[500] == pytest.approx(1e-4)
    assert one_x[8 * 7330 - 1] == pytest.approx(1e-4)
    assert one_x[8 * 7330] == pytest.approx(1e-5) and one_x[11 * 7330] == pytest.approx(1e-6)
    poly = PUBLISHED['ade20k-160k'].lrs()
    assert poly[0] == pytest.approx(6e-5 * 1e-6)
    assert poly[1500] == pytest.approx(6e-5 * (1 - 1500 / 160000))
    assert poly[80000] == pytest.approx(3e-5)               # power 1, min 0
    assert poly[-1] == pytest.approx(6e-5 / 160000)
    htcpp = PUBLISHED['swinv2-htcpp-3x'].lrs(1833)            # batch 64
    assert htcpp[500] == pytest.approx(4e-4) and htcpp[27 * 1833] == pytest.approx(4e-5)
    large = PUBLISHED['swinv2-ade20k-40k'].lrs()
    assert len(large) == 40000
    warm = 1e-6 + (1 - 1e-6) * 187 / 375
    assert large[187] == pytest.approx(6e-5 * warm * (1 - 187 / 40000))
    assert large[375] == pytest.approx(6e-5 * (1 - 375 / 40000))  # warmup is 375
    assert large[20000] == pytest.approx(3e-5)


def test_mmseg_translation_is_flagged():
    """mmseg 1.x's own Swin config starts poly after warmup and ends at 0.

    That is not the Swin segmentation repository's formula, and the checker says so.
    """
    import mmseg
    path = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'configs', 'swin',
                        'swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py')
    report = check_schedule(Config.fromfile(path), 'ade20k-160k')
    assert report.max_rel_error > 1e-3


def _tool_main():
    spec = importlib.util.spec_from_file_location(
        'check_schedule_tool', os.path.join(ROOT, 'tools', 'check_schedule.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.slow
def test_tool_command_line():
    config = os.path.join(CONFIG_DIR, 'cascade_mask_rcnn_swin_t_coco_3x.py')
    out = subprocess.run([sys.executable, os.path.join('tools', 'check_schedule.py'), config,
                          '--iters-per-epoch', '600'], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith('OK') and 'max relative error' in out.stdout


def test_tool_exit_codes(tmp_path, capsys):
    main = _tool_main()
    config = os.path.join(CONFIG_DIR, 'cascade_mask_rcnn_swin_t_coco_3x.py')
    # mmdet 3.x's Swin warmup (1000 iterations) is not Swin-Transformer-Object-Detection's
    # 500; the config still names coco-3x (inherited), so the checker flags it.
    mmdet_style = tmp_path / 'warmup_1000.py'
    mmdet_style.write_text(textwrap.dedent(f"""
        _base_ = [{config!r}]
        param_scheduler = [
            dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
            dict(type='MultiStepLR', by_epoch=True, begin=0, end=36, milestones=[27, 33],
                 gamma=0.1)]
    """))
    assert main([str(mmdet_style), '--iters-per-epoch', '1200']) == 1
    assert capsys.readouterr().out.startswith('MISMATCH')
    demo = os.path.join(CONFIG_DIR, 'demo', 'upernet_swin_synthetic_ade20k.py')
    with pytest.raises(SystemExit) as unnamed:  # schedule_recipe = None: a short demo run
        main([demo])
    assert unnamed.value.code == 2 and 'pass --recipe' in capsys.readouterr().err
    misnamed = tmp_path / 'misnamed.py'
    misnamed.write_text(f"_base_ = [{config!r}]\nschedule_recipe = 'coco-9x'\n")
    with pytest.raises(SystemExit) as unknown:
        main([str(misnamed)])
    error = capsys.readouterr().err
    assert unknown.value.code == 2 and "schedule_recipe='coco-9x' is not a published" in error
    short = tmp_path / 'twelve_epochs.py'
    short.write_text(f"_base_ = [{config!r}]\ntrain_cfg = dict(max_epochs=12)\n")
    assert main([str(short), '--recipe', 'coco-3x', '--iters-per-epoch', '600']) == 1
    assert 'run length differs' in capsys.readouterr().out
