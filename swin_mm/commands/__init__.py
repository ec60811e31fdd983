"""The commands, above the models and the checkpoint functions: what needs a built model.

- :mod:`.swin2mm`: the ``swin2mm`` console script (``tools/swin2mm.py``): convert a
  Swin v1 or V2 checkpoint file, optionally ``--verify`` it on a model;
- :mod:`.model_arguments`: the ``SwinBackbone`` arguments a converted state dict implies
  (and the parts every Swin variant shares), and the check that a model of those
  arguments has exactly its keys and shapes; :mod:`.v2_model_arguments`: the
  ``SwinV2Backbone`` arguments;
- :mod:`.export`: the ``swin-mm-export`` console script (``tools/export.py``): ONNX and
  ``.pt2`` export checked against eager;
- :mod:`.parsing`: the one-line-error argument parser both scripts use.

``import swin_mm`` does not load this package.
"""
