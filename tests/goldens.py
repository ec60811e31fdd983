"""Reference outputs from mmdet's SwinTransformer, for stacks where mmdet cannot run.

mmdet's models need mmcv's compiled ops, which the torch 2.1 CI stack (mmcv built without
them, as many users have it) does not have. So the main stack writes what mmdet computes
(weights, inputs, outputs, gradients, and what mmdet's own loader makes of an official
checkpoint) into a directory, and tests/test_against_goldens.py checks SwinBackbone
against it on the other stack:

    .venv/bin/python tests/goldens.py DIR
    SWIN_MM_GOLDENS=DIR .venv-torch2.1/bin/python -m pytest tests/test_against_goldens.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # also run as a script
from helpers import SMALL, randomize_  # noqa: E402
from swin_layouts import official_from_timm, timm_swin  # noqa: E402

# Two heads in every stage: the torch 2.3-2.7 CPU flash kernel misread our
# multi-head mask, and a one-head stage hides that fault.
ARCH = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(2, 2, 4, 8), window_size=7)
# 224: no padding; 227x301 and 97x131: padding at patch embedding, windows and merging.
EVAL_SIZES = ((224, 224), (227, 301), (97, 131))
TRAIN_SHAPE = (2, 3, 97, 131)
GOLDENS_FILE = 'goldens.pt'
OFFICIAL_FILE = 'official.pth'


def _randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def eval_inputs():
    return {f'{h}x{w}': _randn((1, 3, h, w), seed=h * w) for h, w in EVAL_SIZES}


def train_input():
    return _randn(TRAIN_SHAPE, seed=7)


def train_loss(outputs):
    """A loss that weighs every output element differently, so no gradient is uniform."""
    return sum((out * _randn(out.shape, seed=100 + i)).sum() for i, out in enumerate(outputs))


def _mmdet_swin(**kwargs):
    from mmdet.models.backbones import SwinTransformer
    return SwinTransformer(**ARCH, drop_path_rate=0.0, **kwargs)


def _official_checkpoint():
    """An official-layout file (from timm's model, which uses the official names) whose
    final norm is the identity: mmdet ignores that norm and we load it into norm3, so
    only then do both compute the same function."""
    arch = {**SMALL, 'num_heads': ARCH['num_heads']}
    official = official_from_timm(timm_swin(arch, 224, seed=3))
    official['norm.weight'] = torch.ones_like(official['norm.weight'])
    official['norm.bias'] = torch.zeros_like(official['norm.bias'])
    return {'model': official}


def make(directory: str) -> None:
    """Write GOLDENS_FILE and OFFICIAL_FILE into `directory` (created if needed)."""
    from mmengine.config import ConfigDict
    os.makedirs(directory, exist_ok=True)
    peer = randomize_(_mmdet_swin(), seed=0)
    peer.eval()  # mmdet's train() returns None
    with torch.no_grad():
        eval_outputs = {name: list(peer(x)) for name, x in eval_inputs().items()}
    peer.train()
    x = train_input().requires_grad_()
    train_outputs = peer(x)
    train_loss(train_outputs).backward()
    official_path = os.path.join(directory, OFFICIAL_FILE)
    torch.save(_official_checkpoint(), official_path)
    from_official = _mmdet_swin(convert_weights=True, init_cfg=ConfigDict(
        type='Pretrained', checkpoint=official_path))
    from_official.init_weights()
    from_official.eval()
    with torch.no_grad():
        official_outputs = {name: list(from_official(x))
                            for name, x in eval_inputs().items()}
    goldens = dict(
        torch_version=str(torch.__version__),
        state_dict=peer.state_dict(),
        eval_outputs=eval_outputs,
        train_outputs=[out.detach() for out in train_outputs],
        input_grad=x.grad,
        param_grads={name: p.grad for name, p in peer.named_parameters()},
        official_outputs=official_outputs)
    torch.save(goldens, os.path.join(directory, GOLDENS_FILE))


def load(directory: str) -> dict:
    path = os.path.join(directory, GOLDENS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'expected goldens at {path} (made by tests/goldens.py '
                                f'on the main stack), found none')
    goldens = torch.load(path, weights_only=True)
    goldens['official_path'] = os.path.join(directory, OFFICIAL_FILE)
    return goldens


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: tests/goldens.py OUTPUT_DIR')
    make(sys.argv[1])
    print(f'goldens from mmdet {__import__("mmdet").__version__}, torch {torch.__version__} '
          f'written to {sys.argv[1]}')
