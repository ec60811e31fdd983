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


def _raw_state() -> tuple:
    cuda = torch.cuda.get_rng_state() if (torch.cuda.is_available()
                                          and torch.cuda.is_initialized()) else None
    return random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda


def _set_raw_state(state: tuple) -> None:
    python, numpy, cpu, cuda = state
    random.setstate(python)
    np.random.set_state(numpy)
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda)


def _portable(state: tuple) -> Dict[str, Any]:
    """Tensors and plain Python values only (what a weights-only checkpoint reader
    accepts): numpy's key array becomes a tensor."""
    python, (kind, keys, position, has_gauss, gauss), cpu, cuda = state
    portable = dict(python=python, torch=cpu, numpy=(
        kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss),
        float(gauss)))
    if cuda is not None:
        portable['cuda'] = cuda
    return portable


def rng_state() -> Dict[str, Any]:
    """Every global generator's state of this process, in a form checkpoints hold."""
    return _portable(_raw_state())


def set_rng_state(state: Dict[str, Any]) -> None:
    """Put back what :func:`rng_state` returned (its tensors may have been loaded onto
    a GPU)."""
    version, internal, gauss = state['python']
    kind, keys, position, has_gauss, cached = state['numpy']
    cuda = state.get('cuda') if torch.cuda.is_available() else None
    _set_raw_state(((version, tuple(internal), gauss),
                    (kind, keys.cpu().numpy().astype(np.uint32), position, has_gauss, cached),
                    state['torch'].cpu(), None if cuda is None else cuda.cpu()))


_SET_ASIDE = []  # the states isolated_rng blocks will restore, outermost first


@contextlib.contextmanager
def isolated_rng():
    """Run a block without moving the process's random streams (whatever it draws)."""
    state = _raw_state()
    _SET_ASIDE.append(state)
    try:
        yield
    finally:
        _SET_ASIDE.pop()
        _set_raw_state(state)


def resumable_rng_state() -> Dict[str, Any]:
    """The state the process's streams continue from, in a form checkpoints hold: the
    current one, or inside an :func:`isolated_rng` block (a checkpoint saved during
    validation) the one set aside."""
    return _portable(_SET_ASIDE[0]) if _SET_ASIDE else rng_state()


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
