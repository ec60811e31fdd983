"""Swin v1 checkpoints in, one module per job.

- :mod:`.reading`: files in and out (weights-only unpickling by :mod:`.unpickler`,
  one-line :mod:`.errors`, atomic writes);
- :mod:`.layouts`: which layout a file is in, and its conversion to this plugin's names;
- :mod:`.implied_sizes`: the window and grid sizes that position tables' shapes imply;
- :mod:`.fitting`: fitting a state dict to a given backbone (the load hook);
- :mod:`.loading`: ``init_cfg=dict(type='Pretrained')`` with its log lines;

Functions on state dicts, files and shapes: nothing here imports :mod:`swin_mm.models`.
What needs a built model (inferring its arguments, ``swin2mm --verify``) is in
:mod:`swin_mm.commands`.
"""
from .errors import CheckpointError, DownloadError
from .layouts import LAYOUTS, convert_checkpoint
from .reading import read_checkpoint, write_checkpoint

__all__ = ['CheckpointError', 'DownloadError', 'LAYOUTS', 'convert_checkpoint',
           'read_checkpoint', 'write_checkpoint']
