"""Synthetic scenes written in ADE20K's on-disk layout (``ADEChallengeData2016``).

Label PNGs follow ADE20K's ``reduce_zero_label`` convention: 0 is "other" (ignored after
reduction), the background is ADE id 1 and shape class k is ADE id k + 2, so after the
loader subtracts one the model sees classes 0 (background) .. len(SHAPE_CLASSES). The ADE
class names attached to these ids are meaningless here; only the numbers matter.
"""
from pathlib import Path

import cv2
import numpy as np

from .output_dir import build_atomically
from .scenes import SHAPE_CLASSES, make_scene, polygon_mask, polygon_outline

BACKGROUND_ID = 1
SPLITS = (('training', 'ADE_train'), ('validation', 'ADE_val'))
# Classes the model sees after reduce_zero_label: the background and each shape.
NUM_CLASSES_USED = len(SHAPE_CLASSES) + 1


def shape_ade_id(label: int) -> int:
    return label + BACKGROUND_ID + 1


def label_map(scene, size: int) -> np.ndarray:
    """uint8 label image: background 1, shapes 2.., their 1-pixel outlines 0 (unlabelled)."""
    labels = np.full((size, size), BACKGROUND_ID, np.uint8)
    for instance in scene.instances:
        labels[polygon_mask(instance.polygon, size)] = shape_ade_id(instance.label)
    for instance in scene.instances:
        labels[polygon_outline(instance.polygon, size)] = 0
    return labels


def write_ade20k(out_dir, num_train: int, num_val: int, size: int = 64, seed: int = 0) -> Path:
    """Write ``out_dir/ADEChallengeData2016`` and return its path (the config's data_root).

    Training and validation scenes come from disjoint seed ranges, so validation images
    are never seen in training.
    """
    root = Path(out_dir) / 'ADEChallengeData2016'
    counts = dict(training=num_train, validation=num_val)
    with build_atomically(root) as tmp:
        offset = 0
        for split, prefix in SPLITS:
            (tmp / 'images' / split).mkdir(parents=True)
            (tmp / 'annotations' / split).mkdir(parents=True)
            for index in range(counts[split]):
                scene = make_scene(seed * 1_000_003 + offset + index, size)
                name = f'{prefix}_{index + 1:08d}'
                cv2.imwrite(str(tmp / 'images' / split / f'{name}.jpg'), scene.image,
                            [cv2.IMWRITE_JPEG_QUALITY, 95])
                cv2.imwrite(str(tmp / 'annotations' / split / f'{name}.png'),
                            label_map(scene, size))
            offset += counts[split]
    return root

