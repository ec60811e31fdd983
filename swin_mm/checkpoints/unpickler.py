"""A pickle module for ``torch.load`` that rebuilds tensors and plain data, and runs nothing.

Why not torch's own weights-only loader: its extra allow-list is one process-wide list
(``add_safe_globals``, missing before torch 2.4) and its context manager
(``safe_globals``, 2.5+) removes on exit the entries that others had added, so a loader
that uses it breaks mmengine's ``--resume`` later in the same process. This module
carries its own allow-list: reading a checkpoint never changes what other ``torch.load``
calls accept, and mmengine checkpoints (numpy scalars and arrays, ``HistoryBuffer``)
read the same on every torch release.

Pickle can only run code through callables it looks up by name (``find_class``); the
allowed ones rebuild tensors, containers, numpy values and mmengine's log buffers. Any
other name is refused with torch's wording ("Unsupported global"), before anything runs.
"""
import codecs
import collections
import pickle
from typing import Any, Dict, List

import numpy as np
import torch

# torch._utils functions that torch.save writes to rebuild tensors (looked up by name,
# so a release without one simply does not allow it).
_TENSOR_REBUILDERS = ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_tensor_v3',
                      '_rebuild_parameter', '_rebuild_parameter_with_state',
                      '_rebuild_device_tensor_from_cpu_tensor')
# HistoryBuffer's statistics, which mmengine pickles as getattr(HistoryBuffer, name).
_HISTORY_BUFFER_METHODS = ('min', 'max', 'mean', 'current')


def _history_buffer():
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
    except ImportError:  # pragma: no cover - mmengine is a dependency
        return None
    return HistoryBuffer


def mmengine_globals() -> List[Any]:
    """numpy and mmengine objects in mmengine checkpoints (``meta`` and ``message_hub``)."""
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy.(_)core.multiarray._reconstruct
    scalar = np.float64(0).__reduce__()[0]     # numpy.(_)core.multiarray.scalar
    allowed = [np.ndarray, np.dtype, reconstruct, scalar]
    for name in ('float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64',
                 'uint8', 'bool'):
        allowed += [type(np.dtype(name)), np.dtype(name).type]
    return allowed + ([_history_buffer()] if _history_buffer() else [])


def _attribute_lookup(owner, name: str):
    """``getattr`` limited to HistoryBuffer's statistics methods (plain computations)."""
    if owner is _history_buffer() and name in _HISTORY_BUFFER_METHODS:
        return getattr(owner, name)
    raise pickle.UnpicklingError(f'Unsupported global: getattr({owner!r}, {name!r}) is not '
                                 f'an allowed attribute')


def _qualified(obj) -> List[str]:
    names = [f'{obj.__module__}.{obj.__qualname__}']
    if obj.__module__.startswith('numpy._core.'):  # written by numpy 2, numpy 1's name
        names.append(names[0].replace('numpy._core.', 'numpy.core.', 1))
    elif obj.__module__.startswith('numpy.core.'):
        names.append(names[0].replace('numpy.core.', 'numpy._core.', 1))
    return names


def _allowed_names() -> Dict[str, Any]:
    allowed = {'collections.OrderedDict': collections.OrderedDict,
               'collections.Counter': collections.Counter,  # in optimizer/scheduler states
               'builtins.set': set, 'builtins.frozenset': frozenset,
               'builtins.complex': complex, 'builtins.bytearray': bytearray,
               'builtins.getattr': _attribute_lookup,
               '_codecs.encode': codecs.encode,  # how protocol 2 writes bytes
               'torch.Size': torch.Size, 'torch.device': torch.device,
               'torch.serialization._get_layout': torch.serialization._get_layout}
    allowed.update({f'torch.{name}': value for name, value in vars(torch).items()
                    if isinstance(value, (torch.dtype, torch.layout, torch.memory_format))})
    allowed.update({f'torch._utils.{name}': getattr(torch._utils, name)
                    for name in _TENSOR_REBUILDERS if hasattr(torch._utils, name)})
    for obj in mmengine_globals():
        allowed.update(dict.fromkeys(_qualified(obj), obj))
    return allowed


_ALLOWED = _allowed_names()


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the names in the allow-list."""

    def find_class(self, module: str, name: str):
        module = 'builtins' if module == '__builtin__' else module  # protocol 2's name
        try:
            return _ALLOWED[f'{module}.{name}']
        except KeyError:
            raise pickle.UnpicklingError(f'Unsupported global: GLOBAL {module}.{name} is not '
                                         f'in the weights-only allow-list') from None


def load(file, **kwargs):
    """``pickle.load`` with the restricted Unpickler (torch.load calls it for old files)."""
    return Unpickler(file, **kwargs).load()
