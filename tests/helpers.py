"""Test helpers: the peers (mmdet/mmseg SwinTransformer) and SwinBackbone with identical
weights, comparisons, a free port, and log capture. Fixtures live in conftest.py."""
import logging
import socket

import torch

import swin_mm  # noqa: F401  (registers SwinBackbone)
from swin_mm import SwinBackbone

TINY = dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
# Same architecture family, fewer blocks: for tests where depth adds time, not coverage.
SMALL = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))


def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values in every parameter, so no zero table or unit norm hides a mismatch.

    Linear weights get the 0.02 std every Swin is initialised with; bias tables get a
    large spread so attention is far from uniform.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            scale = 0.5 if 'relative_position_bias_table' in name else 0.02
            base = 1.0 if 'norm' in name and name.endswith('weight') else 0.0
            param.copy_(base + scale * torch.randn(param.shape, generator=gen))
    return module


def in_eval(module):
    """module.eval() that returns the module (the peers' train() returns None)."""
    module.eval()
    return module


def mmdet_swin(**kwargs):
    from mmdet.models.backbones import SwinTransformer
    return SwinTransformer(**{'drop_path_rate': 0.0, **kwargs})


def mmseg_swin(**kwargs):
    from mmseg.models.backbones import SwinTransformer
    return SwinTransformer(**{'drop_path_rate': 0.0, **kwargs})


def twin_of(peer, **kwargs) -> SwinBackbone:
    """A SwinBackbone loaded strictly with the peer's state dict (same names, same shapes)."""
    ours = SwinBackbone(**{'drop_path_rate': 0.0, **kwargs})
    ours.load_state_dict(peer.state_dict(), strict=True)
    return ours



def max_abs_diff(a, b) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def assert_same_gradient(ours, peer, tol=1e-5):
    """Float32 gradients summed over many outputs reach |g| ~ 10: compare relative to that."""
    scale = max(1.0, float(peer.abs().max()))
    assert float((ours - peer).abs().max()) <= tol * scale


def free_port() -> int:
    """A TCP port nobody listens on now, for a gloo process group's rendezvous."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def pretrained(path, **kwargs) -> SwinBackbone:
    """A SMALL SwinBackbone (or with `kwargs`) initialised by init_cfg=Pretrained from `path`."""
    model = SwinBackbone(drop_path_rate=0.0, init_cfg=dict(type='Pretrained', checkpoint=str(path)),
                         **{**SMALL, **kwargs})
    model.init_weights()
    return model.eval()


class LogLines(logging.Handler):
    """The messages a logger emits, with their level names."""

    def __init__(self):
        super().__init__()
        self.lines, self.levels = [], []

    def emit(self, record):
        self.lines.append(record.getMessage())
        self.levels.append(record.levelname)

    def clear(self):
        self.lines.clear()
        self.levels.clear()

    def at(self, level):
        return [line for line, name in zip(self.lines, self.levels) if name == level]


class RunsCode:
    """Unpickling this would call open(marker, 'w'), creating the file: a stand-in for
    arbitrary code in a hostile checkpoint (nothing may create `marker`)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, 'w')
