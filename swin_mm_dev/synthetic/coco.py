"""Synthetic scenes written in COCO's instance-segmentation layout, with COCO's categories.

``out_dir/{train2017,val2017}/*.jpg``, ``out_dir/annotations/instances_{split}.json``
(one polygon per instance, as mmdet's ``CocoDataset`` and pycocotools read them) and
``out_dir/stuffthingmaps/{split}/*.png`` (the COCO-stuff label maps HTC's semantic branch
reads). The json lists all 80 COCO categories with their real ids, so the recipe
configs' default 80-class metainfo keeps every annotation and ``CocoMetric`` maps the
80-way heads' labels back to category ids. Each shape class stands for one COCO
category (``SHAPE_CATEGORIES``); the names are COCO's, the pixels are shapes.
"""
import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from .output_dir import build_atomically
from .scenes import SHAPE_CLASSES, make_scene, polygon_mask, polygon_outline

# The 80 COCO categories in id order; ids 1..90 without the ten never used in the
# released annotations.
COCO_CATEGORY_NAMES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat',
    'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack',
    'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball',
    'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket',
    'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
    'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse',
    'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier',
    'toothbrush')
_UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
COCO_CATEGORY_IDS = tuple(i for i in range(1, 91) if i not in _UNUSED_IDS)
# The COCO category each shape class (scenes.SHAPE_CLASSES order) is annotated as; names
# without spaces, so that --cfg-options can list them (mmengine drops spaces there).
SHAPE_CATEGORIES = ('frisbee', 'book', 'kite', 'umbrella')
# Label-map value of unlabelled pixels (background and shape outlines), as in COCO-stuff.
STUFF_IGNORE = 255
SPLITS = ('train2017', 'val2017')


def category_id(shape_label: int) -> int:
    return COCO_CATEGORY_IDS[COCO_CATEGORY_NAMES.index(SHAPE_CATEGORIES[shape_label])]


def write_coco(out_dir, num_train: int, num_val: int, size: int = 64, seed: int = 0) -> Path:
    """Write the dataset into ``out_dir`` (the config's data_root) and return it."""
    root = Path(out_dir)
    counts = dict(train2017=num_train, val2017=num_val)
    with build_atomically(root) as tmp:
        (tmp / 'annotations').mkdir()
        offset = 0
        for split in SPLITS:
            (tmp / split).mkdir()
            (tmp / 'stuffthingmaps' / split).mkdir(parents=True)
            doc = _split(tmp, split, range(offset, offset + counts[split]), size, seed)
            (tmp / 'annotations' / f'instances_{split}.json').write_text(json.dumps(doc))
            offset += counts[split]
    return root


def stuff_map(scene, size: int) -> np.ndarray:
    """uint8 COCO-stuff label map: a shape's pixels hold its category id - 1 (COCO-stuff's
    convention), everything else is unlabelled."""
    labels = np.full((size, size), STUFF_IGNORE, np.uint8)
    for instance in scene.instances:
        labels[polygon_mask(instance.polygon, size)] = category_id(instance.label) - 1
    for instance in scene.instances:
        labels[polygon_outline(instance.polygon, size)] = STUFF_IGNORE
    return labels


def _split(root: Path, split: str, scene_ids, size: int, seed: int) -> dict:
    images, annotations = [], []
    for image_id, scene_id in enumerate(scene_ids, start=1):
        scene = make_scene(seed * 1_000_003 + scene_id, size)
        stem = f'{image_id:012d}'
        cv2.imwrite(str(root / split / f'{stem}.jpg'), scene.image,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / 'stuffthingmaps' / split / f'{stem}.png'), stuff_map(scene, size))
        images.append(dict(id=image_id, file_name=f'{stem}.jpg', height=size, width=size))
        for instance in scene.instances:
            polygon = [round(float(v), 2) for v in instance.polygon.ravel()]
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=category_id(instance.label), iscrowd=0,
                bbox=[round(v, 2) for v in instance.bbox_xywh()],
                area=_area(polygon, size), segmentation=[polygon]))
    categories = [dict(id=i, name=name, supercategory='synthetic')
                  for i, name in zip(COCO_CATEGORY_IDS, COCO_CATEGORY_NAMES)]
    return dict(info=dict(description='swin_mm synthetic shapes'), licenses=[],
                images=images, annotations=annotations, categories=categories)


def _area(polygon, size: int) -> float:
    """Pixel area as COCO defines it: the polygon rasterised by pycocotools."""
    return float(mask_utils.area(mask_utils.frPyObjects([polygon], size, size))[0])
