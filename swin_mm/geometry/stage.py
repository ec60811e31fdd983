"""The one place that picks a stage's window geometry, once per forward.

A graph capture (:func:`swin_mm.compat.capturing_graph`: torch.export, ONNX, jit
tracing) gets :class:`.ShapeGenericGeometry`, whose indices are expressions of the traced
shape; everything else gets :class:`.CachedWindowGeometry` over tables built once per
map size and device and kept for the next forwards.
"""
from collections import OrderedDict
from typing import Tuple

import torch

from ..compat import capturing_graph, is_compiling
from ..kernels import Kernels
from .cached import CachedWindowGeometry, WindowTables
from .protocol import WindowGeometry
from .shape_generic import ShapeGenericGeometry

GEOMETRY_CACHE_SIZE = 8
NEIGHBOURHOOD = (2, 2)  # patch merging's unshifted 2x2 windows


class StageGeometry:
    """The geometries a Swin stage needs on a (B, H, W, C) map: plain windows, windows
    shifted by `shift`, and the 2x2 neighbourhoods its patch merging joins.

    Args:
        window (tuple[int, int]): window (height, width) in tokens.
        shift (tuple[int, int]): cyclic shift of the shifted blocks, in tokens.
        neighbourhoods (bool): also give the 2x2 neighbourhoods (None otherwise).
            Default: True.
        cache_size (int): map sizes whose tables are kept, most recent first; multi-scale
            training meets hundreds of sizes, and a large map's shift mask is ~10 MB.
            Default: ``GEOMETRY_CACHE_SIZE`` (8).
    """

    def __init__(self, window: Tuple[int, int], shift: Tuple[int, int],
                 neighbourhoods: bool = True, cache_size: int = GEOMETRY_CACHE_SIZE):
        self.window, self.shift, self.cache_size = tuple(window), tuple(shift), cache_size
        self._specs = ((self.window, (0, 0)), (self.window, self.shift))
        if neighbourhoods:
            self._specs += ((NEIGHBOURHOOD, (0, 0)),)
        self._tables = OrderedDict()

    def __call__(self, x: torch.Tensor, kernels: Kernels) -> Tuple[WindowGeometry, ...]:
        """(plain, shifted, neighbourhoods or None) geometries for the map `x`."""
        hw = x.shape[1:3]
        if capturing_graph(x):
            picked = tuple(ShapeGenericGeometry(hw, window, shift, x.device)
                           for window, shift in self._specs)
        else:
            picked = tuple(CachedWindowGeometry(tables, kernels)
                           for tables in self.tables(tuple(hw), x.device))
        return picked + (None,) * (3 - len(picked))

    def tables(self, hw: Tuple[int, int], device: torch.device) -> Tuple[WindowTables, ...]:
        """The tables of each geometry of a map of size hw, cached."""
        if is_compiling():  # traced once into the graph instead
            return self._build(hw, device)
        key = (hw, device)
        cached = self._tables.pop(key, None) or self._build(hw, device)
        self._tables[key] = cached  # most recently used last
        while len(self._tables) > self.cache_size:
            self._tables.popitem(last=False)
        return cached

    def _build(self, hw, device):
        return tuple(WindowTables.build(hw, window, shift, device)
                     for window, shift in self._specs)
