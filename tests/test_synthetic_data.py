"""The synthetic datasets are deterministic and readable by the real mmseg/mmdet loaders."""
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from swin_mm_dev.synthetic import write_ade20k, write_coco
from swin_mm_dev.synthetic.ade20k import NUM_CLASSES_USED
from swin_mm_dev.synthetic.coco import SHAPE_CATEGORIES, STUFF_IGNORE

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
        data_prefix=dict(img='val2017/'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    sample = dataset[0]
    assert sample['img'].shape == (64, 64, 3)
    assert len(sample['gt_bboxes']) == len(sample['gt_masks']) > 0


def test_coco_categories_are_the_80_the_recipe_configs_use(tmp_path):
    """mmdet's default COCO metainfo (what every recipe config uses) keeps every
    annotation, and label i maps back to the file's category ids as CocoMetric does."""
    from mmdet.datasets import CocoDataset
    from pycocotools.coco import COCO
    root = write_coco(tmp_path / 'coco', num_train=6, num_val=1, size=64)
    ann_file = root / 'annotations/instances_train2017.json'
    coco = COCO(str(ann_file))
    names = [c['name'] for c in coco.loadCats(coco.getCatIds())]
    assert names == list(CocoDataset.METAINFO['classes'])
    assert coco.getCatIds()[-1] == 90 and len(names) == 80  # COCO's ids, gaps included
    init_default_scope('mmdet')
    dataset = CocoDataset(data_root=str(root), ann_file='annotations/instances_train2017.json',
                          data_prefix=dict(img='train2017/'), pipeline=[])
    loaded = sum(len(dataset.get_data_info(i)['instances']) for i in range(len(dataset)))
    assert loaded == len(coco.getAnnIds()) > 0
    assert {names[i['bbox_label']] for k in range(len(dataset))
            for i in dataset.get_data_info(k)['instances']} <= set(SHAPE_CATEGORIES)


def test_coco_stuff_maps_label_the_shapes_as_htc_reads_them(tmp_path):
    from mmdet.datasets import CocoDataset
    from pycocotools.coco import COCO
    root = write_coco(tmp_path / 'coco', num_train=3, num_val=1, size=64)
    coco = COCO(str(root / 'annotations/instances_train2017.json'))
    init_default_scope('mmdet')
    dataset = CocoDataset(
        data_root=str(root), ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/', seg='stuffthingmaps/train2017/'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True, with_seg=True)])
    assert (root / 'stuffthingmaps/val2017/000000000001.png').exists()
    for index in range(len(dataset)):
        sample = dataset[index]
        stuff = sample['gt_seg_map']
        image_id = dataset.get_data_info(index)['img_id']
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
            inside = coco.annToMask(ann).astype(bool)
            labelled = stuff[inside]
            # COCO-stuff labels a thing pixel with its category id - 1; edges may be unlabelled
            assert set(np.unique(labelled)) <= {ann['category_id'] - 1, STUFF_IGNORE}
            assert (labelled == ann['category_id'] - 1).mean() > 0.5
        assert set(np.unique(stuff)) <= {c - 1 for c in coco.getCatIds()} | {STUFF_IGNORE}


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
