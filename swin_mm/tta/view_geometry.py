"""Where boxes and RoI masks of one test-time view sit relative to the original image.

A view is the original image resized by ``scale_factor`` (width, height factors) to
``img_shape`` and then possibly flipped inside ``img_shape``; padding is added at the
right and bottom afterwards, so it never moves a pixel and plays no part here. Boxes are
(..., 4) tensors of x1, y1, x2, y2 in pixel coordinates.
"""
from typing import Tuple

import torch
from torch import Tensor

FLIP_AXES = dict(horizontal=('x',), vertical=('y',), diagonal=('x', 'y'))


def view_flip(meta: dict) -> Tuple[str, ...]:
    """The axes ('x', 'y') a view was mirrored along, from its ``flip``/``flip_direction``."""
    if 'flip' not in meta:
        raise KeyError("expected 'flip' and 'flip_direction' in each view's metainfo (add "
                       "them to PackDetInputs' meta_keys in tta_pipeline), found keys "
                       f'{sorted(meta)}')
    if not meta['flip']:
        return ()
    direction = meta.get('flip_direction')
    if direction not in FLIP_AXES:
        raise ValueError(f'expected flip_direction one of {sorted(FLIP_AXES)}, '
                         f'found {direction!r}')
    return FLIP_AXES[direction]


def _mirror(boxes: Tensor, axes: Tuple[str, ...], img_shape) -> Tensor:
    """Boxes mirrored inside an image of ``img_shape`` (height, width)."""
    if not axes:
        return boxes
    height, width = img_shape[:2]
    x1, y1, x2, y2 = boxes.unbind(-1)
    if 'x' in axes:
        x1, x2 = width - x2, width - x1
    if 'y' in axes:
        y1, y2 = height - y2, height - y1
    return torch.stack([x1, y1, x2, y2], dim=-1)


def _scale(boxes: Tensor, meta: dict) -> Tensor:
    """The view's (w, h, w, h) scale factors as a tensor beside ``boxes``."""
    return boxes.new_tensor(meta['scale_factor']).repeat(2)


def boxes_to_original(boxes: Tensor, meta: dict) -> Tensor:
    """Boxes in a view's pixels -> the original image's pixels."""
    return _mirror(boxes, view_flip(meta), meta['img_shape']) / _scale(boxes, meta)


def boxes_to_view(boxes: Tensor, meta: dict) -> Tensor:
    """Boxes in the original image's pixels -> a view's pixels."""
    return _mirror(boxes * _scale(boxes, meta), view_flip(meta), meta['img_shape'])


def roi_masks_to_original(masks: Tensor, meta: dict) -> Tensor:
    """RoI mask maps (..., h, w) predicted in a view, oriented as in the original image.

    A RoI's map spans its box, so resizing does not change it; a mirrored view mirrors it.
    """
    dims = [d for axis, d in (('x', -1), ('y', -2)) if axis in view_flip(meta)]
    return masks.flip(dims) if dims else masks
