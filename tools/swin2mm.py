#!/usr/bin/env python
"""Convert a Swin v1 or Swin V2 checkpoint to the swin_mm (mmdet/mmseg) layout.

    python tools/swin2mm.py SRC DST [--layout NAME] [--verify] [--overwrite] [--unsafe-load]

The same command as the ``swin2mm`` console script that installing the package adds;
the layouts live in swin_mm/checkpoints/layouts.py (v1) and v2_layouts.py (V2), shared
with SwinBackbone's and SwinV2Backbone's loading.
"""
import sys

from swin_mm.commands.swin2mm import main

if __name__ == '__main__':
    sys.exit(main())
