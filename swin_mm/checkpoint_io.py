"""Reading checkpoint files safely from any path mmengine can read."""
import io
import os
import pickle
import tempfile
import zipfile
from urllib.parse import urlparse

import torch


# What torch.load raises on truncated, foreign or code-carrying files.
_READ_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile,
                AttributeError, ValueError, KeyError, IndexError, OSError)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not hold what was expected."""


def mmengine_safe_globals():
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


def _load(source, unsafe: bool):
    """torch.load, memory-mapping local zip-format files (the default since torch 1.6):
    a Swin-L checkpoint then costs page cache, not a private copy, and loads at once."""
    options = dict(map_location='cpu', weights_only=not unsafe)
    if isinstance(source, str):
        try:
            with torch.serialization.safe_globals(mmengine_safe_globals()):
                return torch.load(source, mmap=True, **options)
        except RuntimeError as err:
            if 'mmap' not in str(err):  # only the legacy (pre-zip) format cannot be mapped
                raise
    with torch.serialization.safe_globals(mmengine_safe_globals()):
        return torch.load(source, **options)


def read_checkpoint(path: str, unsafe: bool = False):
    """Load a checkpoint on CPU without running code from the pickle.

    ``unsafe=True`` allows arbitrary unpickling; only for files from a trusted source.
    """
    source = _open(str(path))
    try:
        return _load(source, unsafe)
    except _READ_ERRORS as err:
        message = str(err).strip().splitlines()
        if 'Unsupported operand' in str(err):  # not a pickle torch can read safely
            opcode = next(line for line in message if 'Unsupported operand' in line).strip()
            raise CheckpointError(f'expected a torch checkpoint, could not read {path}: '
                                  f'{opcode} (not a torch file, or a pickle only '
                                  f'--unsafe-load could read)') from None
        if 'weights_only' in str(err) or 'Unsupported global' in str(err):
            detail = next((line for line in message if 'Unsupported global' in line),
                          message[0] if message else '')
            raise CheckpointError(
                f'{path} needs arbitrary unpickling to load ({detail.strip()}); refusing. '
                f'If you trust the file, pass --unsafe-load (or unsafe=True)') from None
        raise CheckpointError(f'expected a torch checkpoint, could not read {path}: '
                              f'{message[0] if message else type(err).__name__}') from None


def write_checkpoint(checkpoint, path: str) -> None:
    """torch.save to a temporary file beside `path`, then rename: never a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                                         suffix='.tmp', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as stream:
            torch.save(checkpoint, stream)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 is for the temporary only
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
