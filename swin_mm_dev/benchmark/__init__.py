"""Measurement helpers behind ``tools/benchmark.py``: one job per module.

- :mod:`.models`: the same random weights in SwinBackbone, mmdet's and timm's Swin.
- :mod:`.timing`: A/B-interleaved wall-clock timing with medians and spread.
- :mod:`.memory`: peak resident memory of one step, each model in a fresh process.
- :mod:`.flops`: FLOPs of a step and the machine's measured float32 matmul peak.
"""
