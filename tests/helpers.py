"""Test helpers, written once: the peers (mmdet/mmseg SwinTransformer) and SwinBackbone
with identical weights, random weights and inputs, the peers' pad -> roll -> cut window
partition, what the running torch was probed to provide, comparisons, a free port, and
log capture. Fixtures live in conftest.py."""
import logging
import socket

import torch
import torch.nn.functional as F

import swin_mm  # noqa: F401  (registers SwinBackbone)
from swin_mm import SwinBackbone
from swin_mm.kernels.probes import running_torch
from swin_mm.models import arch_settings

TINY = arch_settings('tiny')
# Same architecture family, fewer blocks: for tests where depth adds time, not coverage.
SMALL = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
# Whether the library's probe found the CPU flash kernel usable (float32) on this torch.
CPU_FLASH = torch.float32 in running_torch().cpu_flash_dtypes


def images(batch, height, width, seed=0, channels=3) -> torch.Tensor:
    """(batch, channels, height, width) standard normal images, reproducible by `seed`."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, height, width, generator=gen)


def randomize_(module: torch.nn.Module, seed: int = 0, weight_std: float = 0.02,
               table_std: float = 0.5) -> torch.nn.Module:
    """Random values in every parameter, so no zero table or unit norm hides a mismatch.

    Weights get `weight_std` (0.02: what every Swin is initialised with), norm weights
    around 1; bias tables get a large spread (`table_std`) so attention is far from uniform.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            scale = table_std if 'relative_position_bias_table' in name else weight_std
            base = 1.0 if 'norm' in name and name.endswith('weight') else 0.0
            param.copy_(base + scale * torch.randn(param.shape, generator=gen))
    return module


def pad_roll_cut(x, window, shift):
    """(B, H, W, C) -> (B * nW, h * w, C): pad bottom/right with zeros, roll by -shift,
    cut into windows row by row (the peers' and the official code's three steps)."""
    (b, h, w, c), (wh, ww) = x.shape, window
    x = F.pad(x, (0, 0, 0, (-w) % ww, 0, (-h) % wh))
    x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    hp, wp = x.shape[1:3]
    x = x.view(b, hp // wh, wh, wp // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, c)


def uncut_unroll_crop(windows, hw, window, shift):
    """Inverse of :func:`pad_roll_cut`: windows back to the map, roll by +shift, crop."""
    (h, w), (wh, ww), c = hw, window, windows.shape[-1]
    hp, wp = -(-h // wh) * wh, -(-w // ww) * ww
    x = windows.view(-1, hp // wh, wp // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    x = torch.roll(x.reshape(-1, hp, wp, c), shifts=shift, dims=(1, 2))
    return x[:, :h, :w]


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
