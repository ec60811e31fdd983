"""Synthetic scenes written in COCO's instance-segmentation layout.

``out_dir/{train2017,val2017}/*.jpg`` and ``out_dir/annotations/instances_{split}.json``
with one polygon per instance, as mmdet's ``CocoDataset`` and pycocotools read them.
Category names are the shape names (``CLASSES``); a config sets them as ``metainfo``.
"""
import json
from pathlib import Path

import cv2
from pycocotools import mask as mask_utils

from .output_dir import build_atomically
from .scenes import SHAPE_CLASSES, make_scene

CLASSES = tuple(name for name, *_ in SHAPE_CLASSES)
SPLITS = ('train2017', 'val2017')


def write_coco(out_dir, num_train: int, num_val: int, size: int = 64, seed: int = 0) -> Path:
    """Write the dataset into ``out_dir`` (the config's data_root) and return it."""
    root = Path(out_dir)
    counts = dict(train2017=num_train, val2017=num_val)
    with build_atomically(root) as tmp:
        (tmp / 'annotations').mkdir()
        offset = 0
        for split in SPLITS:
            (tmp / split).mkdir()
            doc = _split(tmp / split, range(offset, offset + counts[split]), size, seed)
            (tmp / 'annotations' / f'instances_{split}.json').write_text(json.dumps(doc))
            offset += counts[split]
    return root


def _split(image_dir: Path, scene_ids, size: int, seed: int) -> dict:
    images, annotations = [], []
    for image_id, scene_id in enumerate(scene_ids, start=1):
        scene = make_scene(seed * 1_000_003 + scene_id, size)
        file_name = f'{image_id:012d}.jpg'
        cv2.imwrite(str(image_dir / file_name), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=image_id, file_name=file_name, height=size, width=size))
        for instance in scene.instances:
            polygon = [round(float(v), 2) for v in instance.polygon.ravel()]
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=instance.label + 1, iscrowd=0,
                bbox=[round(v, 2) for v in instance.bbox_xywh()],
                area=_area(polygon, size), segmentation=[polygon]))
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(CLASSES)]
    return dict(info=dict(description='swin_mm synthetic shapes'), licenses=[],
                images=images, annotations=annotations, categories=categories)


def _area(polygon, size: int) -> float:
    """Pixel area as COCO defines it: the polygon rasterised by pycocotools."""
    return float(mask_utils.area(mask_utils.frPyObjects([polygon], size, size))[0])
