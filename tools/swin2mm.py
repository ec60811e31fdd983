#!/usr/bin/env python
"""Convert a Swin v1 checkpoint to the swin_mm (mmdet/mmseg) layout.

    python tools/swin2mm.py SRC DST [--layout NAME] [--verify] [--overwrite] [--unsafe-load]

The layouts and the conversion live in swin_mm/convert.py, shared with SwinBackbone's
init_cfg=dict(type='Pretrained') loading.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from swin_mm.cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
