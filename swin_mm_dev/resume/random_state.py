"""The process's random streams as one value: save, restore, isolate, seed per sample.

A process draws from four generators: Python's ``random``, numpy's global one, torch's
CPU one and (where there is CUDA) torch's one on the current device. Training randomness
(dropout, drop path, RoI sampling) comes from them, so a resumed run continues them from
the checkpoint; data augmentation and anything outside the training step (validation,
starting a data iterator) runs with them set aside, so it cannot shift them.
"""
import contextlib
import random
from typing import Any, Dict

import numpy as np
import torch


def rng_state() -> Dict[str, Any]:
    """Every global generator's state of this process, as tensors and plain Python values
    (what a weights-only checkpoint reader accepts)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = dict(python=random.getstate(), torch=torch.get_rng_state(),
                 numpy=(kind, torch.from_numpy(keys.astype(np.int64)), int(position),
                        int(has_gauss), float(gauss)))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Put back what :func:`rng_state` returned (its tensors may have been loaded onto
    a GPU)."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), position, has_gauss,
                         cached))
    torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'].cpu())


_SET_ASIDE = []  # the states isolated_rng blocks will restore, outermost first


@contextlib.contextmanager
def isolated_rng():
    """Run a block without moving the process's random streams (whatever it draws)."""
    state = rng_state()
    _SET_ASIDE.append(state)
    try:
        yield
    finally:
        _SET_ASIDE.pop()
        set_rng_state(state)


def resumable_rng_state() -> Dict[str, Any]:
    """The state the process's streams continue from: the current one, or inside an
    :func:`isolated_rng` block (a checkpoint saved during validation) the one set aside."""
    return _SET_ASIDE[0] if _SET_ASIDE else rng_state()


def sample_seed(seed: int, pass_index: int, sample_index: int) -> int:
    """A 32-bit seed for one sample in one pass over the data, the same in every process."""
    return int(np.random.SeedSequence([seed % 2**32, pass_index, sample_index])
               .generate_state(1)[0])


@contextlib.contextmanager
def seeded_rng(seed: int):
    """Python, numpy and torch (CPU) generators seeded with `seed` inside the block,
    the process's own streams back after it."""
    with isolated_rng():
        random.seed(seed)
        np.random.seed(seed)
        torch.default_generator.manual_seed(seed)
        yield
