"""Reading checkpoint files safely from any path mmengine can read."""
import io
import os
import pickle
import zipfile
from urllib.parse import urlparse

import torch


# What torch.load raises on truncated, foreign or code-carrying files.
_READ_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile,
                AttributeError, ValueError, KeyError, IndexError, OSError)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not hold what was expected."""


def _safe_globals():
    """Harmless classes that mmengine checkpoints carry in their ``meta``/``message_hub``."""
    import numpy as np
    allowed = [np.dtype, np.ndarray, np.core.multiarray._reconstruct]
    allowed += [type(np.dtype(t)) for t in ('float64', 'float32', 'int64', 'int32', 'bool')]
    allowed += [np.float64, np.float32, np.int64, np.int32, np.bool_]
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
        allowed.append(HistoryBuffer)
    except ImportError:  # pragma: no cover - mmengine is a dependency
        pass
    return allowed


def _open(path: str):
    """A local path or a file object holding the bytes behind `path`."""
    if os.path.isdir(path):
        raise CheckpointError(f'expected a checkpoint file, found a directory: {path}')
    scheme = urlparse(path).scheme
    if scheme in ('http', 'https'):
        cache = os.path.join(torch.hub.get_dir(), 'checkpoints')
        local = os.path.join(cache, os.path.basename(urlparse(path).path))
        if not os.path.exists(local):
            os.makedirs(cache, exist_ok=True)
            torch.hub.download_url_to_file(path, local)  # writes a temp file, then renames
        return local
    if scheme and len(scheme) > 1:  # s3://, petrel://, ... through mmengine's backends
        from mmengine.fileio import get
        return io.BytesIO(get(path))
    if not os.path.exists(path):
        raise CheckpointError(f'expected a checkpoint file, found no file at {path}')
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'expected a checkpoint file, found an empty file: {path}')
    return path


def read_checkpoint(path: str, unsafe: bool = False):
    """Load a checkpoint on CPU without running code from the pickle.

    ``unsafe=True`` allows arbitrary unpickling; only for files from a trusted source.
    """
    source = _open(str(path))
    try:
        if unsafe:
            return torch.load(source, map_location='cpu', weights_only=False)
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(source, map_location='cpu', weights_only=True)
    except _READ_ERRORS as err:
        message = str(err).strip().splitlines()
        if 'weights_only' in str(err) or 'Unsupported global' in str(err):
            detail = next((line for line in message if 'Unsupported global' in line),
                          message[0] if message else '')
            raise CheckpointError(
                f'{path} needs arbitrary unpickling to load ({detail.strip()}); refusing. '
                f'If you trust the file, pass --unsafe-load (or unsafe=True)') from None
        raise CheckpointError(f'expected a torch checkpoint, could not read {path}: '
                              f'{message[0] if message else type(err).__name__}') from None

