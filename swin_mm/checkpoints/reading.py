"""Checkpoint files in and out: weights-only reading from any path mmengine can read,
with one-line errors, and writing that never leaves a half-written file."""
import io
import os
import pickle
import zipfile
from urllib.parse import urlparse

import torch

from ..compat import LOAD_TAKES_MMAP
from ..output_files import written_atomically
from . import unpickler
from .errors import CheckpointError, DownloadError


# What torch.load raises on truncated, foreign or code-carrying files.
_READ_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile,
                AttributeError, ValueError, KeyError, IndexError, OSError)


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
            try:
                torch.hub.download_url_to_file(path, local)  # a temp file, then a rename
            except OSError as err:  # URLError, HTTPError, timeouts, a full disk
                reason = getattr(err, 'reason', None) or err
                raise DownloadError(f'could not download {path} ({reason})') from None
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
    """torch.load with this package's weights-only unpickler (``unsafe``: Python's own).

    Local zip-format files (the default since torch 1.6) are memory-mapped where torch
    can (2.1+): a Swin-L checkpoint then costs page cache, not a private copy.
    """
    options = dict(map_location='cpu', weights_only=False)
    if not unsafe:
        options['pickle_module'] = unpickler
    if isinstance(source, str) and LOAD_TAKES_MMAP:
        try:
            return torch.load(source, mmap=True, **options)
        except RuntimeError as err:
            if 'mmap' not in str(err):  # only the legacy (pre-zip) format cannot be mapped
                raise
    return torch.load(source, **options)


def read_checkpoint(path: str, unsafe: bool = False):
    """Load a checkpoint on CPU without running code from the pickle.

    Reads tensors, plain containers and what mmengine checkpoints hold (numpy values,
    ``HistoryBuffer``) on every supported torch, and leaves torch's process-wide
    allow-list alone (see :mod:`.unpickler`). ``unsafe=True`` allows arbitrary
    unpickling; only for files from a trusted source.
    """
    source = _open(str(path))
    try:
        return _load(source, unsafe)
    except _READ_ERRORS as err:
        message = str(err).strip().splitlines()
        if str(err).startswith('Unsupported global'):  # raised by the unpickler
            raise CheckpointError(
                f'expected a checkpoint of weights and plain data, {path} also holds '
                f'objects whose loading could run code ({message[0]}); refused') from None
        raise CheckpointError(f'expected a torch checkpoint, could not read {path}: '
                              f'{message[0] if message else type(err).__name__}') from None


def write_checkpoint(checkpoint, path: str) -> None:
    """torch.save to a temporary file beside `path`, then rename: never a half-written file."""
    with written_atomically(path) as temporary:
        torch.save(checkpoint, temporary)
