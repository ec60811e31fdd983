"""The synthetic datasets are deterministic and readable by the real mmseg/mmdet loaders."""
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from swin_mm.synthetic import write_ade20k, write_coco
from swin_mm.synthetic.ade20k import NUM_CLASSES_USED
from swin_mm.synthetic.coco import CLASSES

REPO = Path(__file__).resolve().parents[1]


def _files(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    first = write_ade20k(tmp_path / 'a', 3, 2, size=48, seed=1)
    second = write_ade20k(tmp_path / 'b', 3, 2, size=48, seed=1)
    other = write_ade20k(tmp_path / 'c', 3, 2, size=48, seed=2)
    assert _files(first) == _files(second)
    assert _files(first) != _files(other)


def test_ade20k_layout_loads_with_reduce_zero_label(tmp_path):
    from mmseg.datasets import ADE20KDataset
    root = write_ade20k(tmp_path, num_train=4, num_val=2, size=48)
    assert root.name == 'ADEChallengeData2016'
    assert len(list((root / 'images/training').glob('ADE_train_*.jpg'))) == 4
    assert len(list((root / 'annotations/validation').glob('ADE_val_*.png'))) == 2
    init_default_scope('mmseg')
    dataset = ADE20KDataset(
        data_root=str(root),
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs')])
    assert len(dataset) == 4
    raw = np.unique(np.concatenate([
        np.unique(cv2.imread(dataset.get_data_info(i)['seg_map_path'], 0))
        for i in range(4)]))
    assert set(raw) <= set(range(NUM_CLASSES_USED + 1)) and 0 in raw and 1 in raw
    labels = np.unique(np.concatenate([
        np.unique(dataset[i]['data_samples'].gt_sem_seg.data.numpy()) for i in range(4)]))
    # 0 ("other", the outlines) became ignore; ADE ids 1.. became classes 0..
    assert set(labels) <= set(range(NUM_CLASSES_USED)) | {255}
    assert 255 in labels and 0 in labels


def test_coco_layout_matches_pycocotools_and_mmdet(tmp_path):
    from mmdet.datasets import CocoDataset
    from pycocotools.coco import COCO
    from pycocotools import mask as mask_utils
    root = write_coco(tmp_path / 'coco', num_train=4, num_val=2, size=64)
    coco = COCO(str(root / 'annotations/instances_train2017.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    assert len(coco.getImgIds()) == 4
    for ann in coco.loadAnns(coco.getAnnIds()):
        rle = coco.annToRLE(ann)
        # area and bbox are those of the polygon as pycocotools (and so CocoMetric) sees it.
        assert float(mask_utils.area(rle)) == ann['area'] > 0
        x, y, w, h = mask_utils.toBbox(rle)
        assert np.allclose([x, y], ann['bbox'][:2], atol=1.5)
    init_default_scope('mmdet')
    dataset = CocoDataset(
        data_root=str(root), ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'), metainfo=dict(classes=CLASSES),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    sample = dataset[0]
    assert sample['img'].shape == (64, 64, 3)
    assert len(sample['gt_bboxes']) == len(sample['gt_masks']) > 0


def test_existing_output_is_refused_and_left_alone(tmp_path):
    root = write_coco(tmp_path / 'coco', 2, 1, size=32)
    before = _files(root)
    with pytest.raises(FileExistsError, match='expected no existing'):
        write_coco(tmp_path / 'coco', 3, 1, size=32)
    assert _files(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['coco']  # no temporary left over


def test_command_line_tool(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('make_synthetic_data',
                                                  REPO / 'tools/make_synthetic_data.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(['coco', str(tmp_path / 'c'), '--num-train', '2', '--num-val', '1',
               '--size', '32'])
    doc = json.loads((tmp_path / 'c/annotations/instances_val2017.json').read_text())
    assert len(doc['images']) == 1
    with pytest.raises(SystemExit, match='^error: expected no existing'):
        tool.main(['coco', str(tmp_path / 'c')])
    with pytest.raises(SystemExit):
        tool.main(['coco', str(tmp_path / 'd'), '--num-train', '0'])
    assert '--num-train must be at least 1, got 0' in capsys.readouterr().err
