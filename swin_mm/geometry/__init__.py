"""Window geometry: how a (B, H, W, C) map is padded, shifted and cut into windows, and
back, plus the shift mask and the relative position index. Below the models, above
the kernels (the cached tables are gathered by the selected kernels); a new block
variant (Swin V2) reuses it as is.

One interface, :class:`WindowGeometry`, two implementations, picked once per forward
per stage by :class:`StageGeometry`:

- :mod:`.cached`: :class:`CachedWindowGeometry`, index tables cached per map size and
  partitioned by the selected kernels (eager runs, torch.compile);
- :mod:`.shape_generic`: :class:`ShapeGenericGeometry`, the same indices computed from
  the traced shape in public ops (graph capture for export);
- :mod:`.shift_mask`: the mask between the regions a cyclic shift wraps together;
- :mod:`.relative_position`: the bias-table row of each token pair in a window, and
  Swin V2's log-spaced relative coordinates;
- :mod:`.protocol`: the interface; :mod:`.stage`: the choice and the tables cache.
"""
from .cached import CachedWindowGeometry, WindowTables
from .protocol import WindowGeometry
from .relative_position import log_spaced_relative_coords, relative_position_index
from .shape_generic import ShapeGenericGeometry
from .shift_mask import MASKED_LOGIT, shift_window_mask, window_count
from .stage import GEOMETRY_CACHE_SIZE, StageGeometry


__all__ = ['CachedWindowGeometry', 'GEOMETRY_CACHE_SIZE', 'MASKED_LOGIT',
           'ShapeGenericGeometry', 'StageGeometry', 'WindowGeometry', 'WindowTables',
           'log_spaced_relative_coords', 'relative_position_index', 'shift_window_mask',
           'window_count']
