#!/usr/bin/env python
"""Export a SwinBackbone or SwinV2Backbone to ONNX or .pt2 with dynamic input sizes, checked
against eager.

    python tools/export.py OUT.onnx|OUT.pt2 [--config CFG] [--arg KEY=VALUE ...]
        [--checkpoint CKPT] [--dynamo] [--opset N] [--check-sizes HxW ...]

The same as the ``swin-mm-export`` command; the code lives in swin_mm/commands/export.py.
"""
import sys

from swin_mm.commands.export import main

if __name__ == '__main__':
    sys.exit(main())
