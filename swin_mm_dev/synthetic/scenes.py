"""Deterministic scenes of coloured, textured shapes on a noisy background.

The classes differ in colour, outline and texture at once, so a small model learns
them in a few hundred iterations on CPU, yet it still has to find boundaries and tell
shapes apart from a cluttered background. Shapes never overlap, so every instance's
polygon is also its exact visible mask (what COCO polygons and label PNGs both need).
"""
from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np

# One entry per shape class: (name, BGR base colour, number of polygon vertices, stripe period).
# Vertex count 0 means an ellipse (approximated by a 24-gon).
SHAPE_CLASSES: Tuple[Tuple[str, Tuple[int, int, int], int, int], ...] = (
    ('circle', (40, 40, 210), 0, 0),
    ('square', (50, 190, 60), 4, 0),
    ('triangle', (200, 90, 40), 3, 0),
    ('striped_hexagon', (30, 200, 220), 6, 4),
)
ELLIPSE_VERTICES = 24


@dataclass(frozen=True)
class Instance:
    """One shape: its class index into SHAPE_CLASSES and its polygon in pixel coordinates."""
    label: int
    polygon: np.ndarray  # (N, 2) float32, x then y

    def bbox_xywh(self) -> List[float]:
        x0, y0 = self.polygon.min(axis=0)
        x1, y1 = self.polygon.max(axis=0)
        return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


@dataclass(frozen=True)
class Scene:
    image: np.ndarray          # (H, W, 3) uint8, BGR like cv2 writes it
    instances: List[Instance]


def make_scene(seed: int, size: int, max_shapes: int = 4) -> Scene:
    """The scene for ``seed``: the same seed always gives the same pixels and polygons."""
    rng = np.random.default_rng(seed)
    image = _background(rng, size)
    instances = []
    taken = []  # circumscribed circles (cx, cy, r) of placed shapes
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        label = int(rng.integers(len(SHAPE_CLASSES)))
        placed = _place(rng, size, taken)
        if placed is None:
            continue
        taken.append(placed)
        polygon = _polygon(rng, label, *placed)
        _paint(rng, image, label, polygon)
        instances.append(Instance(label, polygon))
    return Scene(image, instances)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Grey-brown clutter: a smooth colour field plus pixel noise, never a flat colour."""
    coarse = rng.uniform(70, 170, size=(4, 4, 3)).astype(np.float32)
    field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 12, size=(size, size, 3)).astype(np.float32)
    return np.clip(field + noise, 0, 255).astype(np.uint8)


def _place(rng: np.random.Generator, size: int, taken: list, tries: int = 20):
    """A circle (cx, cy, r) inside the image that keeps a 2-pixel gap to every shape."""
    for _ in range(tries):
        radius = rng.uniform(0.12, 0.25) * size
        cx, cy = rng.uniform(radius + 1, size - radius - 1, size=2)
        if all(np.hypot(cx - x, cy - y) > radius + r + 2 for x, y, r in taken):
            return float(cx), float(cy), float(radius)
    return None


def _polygon(rng: np.random.Generator, label: int, cx: float, cy: float,
             radius: float) -> np.ndarray:
    vertices = SHAPE_CLASSES[label][2]
    angle = rng.uniform(0, 2 * np.pi)
    if vertices == 0:
        aspect = rng.uniform(0.7, 1.0)
        t = angle + np.linspace(0, 2 * np.pi, ELLIPSE_VERTICES, endpoint=False)
        xs, ys = radius * np.cos(t), aspect * radius * np.sin(t)
    else:
        t = angle + np.linspace(0, 2 * np.pi, vertices, endpoint=False)
        xs, ys = radius * np.cos(t), radius * np.sin(t)
    return np.stack([cx + xs, cy + ys], axis=1).astype(np.float32)


def _paint(rng: np.random.Generator, image: np.ndarray, label: int,
           polygon: np.ndarray) -> None:
    """Fill the polygon with its class colour (jittered) and, for striped classes, stripes."""
    _, colour, _, period = SHAPE_CLASSES[label]
    size = image.shape[0]
    fill = np.clip(np.array(colour) + rng.integers(-30, 31, size=3), 0, 255)
    layer = np.empty_like(image)
    layer[:] = fill.astype(np.uint8)
    if period:
        rows = (np.arange(size) // period) % 2 == 1
        layer[rows] = (layer[rows] * 0.45).astype(np.uint8)
    mask = polygon_mask(polygon, size)
    image[mask] = layer[mask]


def polygon_mask(polygon: np.ndarray, size: int) -> np.ndarray:
    """Boolean (size, size) mask of a polygon, rasterised the same way for image and label."""
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return mask.astype(bool)


def polygon_outline(polygon: np.ndarray, size: int) -> np.ndarray:
    """Boolean mask of the polygon's 1-pixel outline: the ambiguous pixels at its edge."""
    mask = np.zeros((size, size), np.uint8)
    cv2.polylines(mask, [np.round(polygon).astype(np.int32)], True, 1, thickness=1)
    return mask.astype(bool)
