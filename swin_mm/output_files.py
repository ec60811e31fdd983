"""Output files that appear only complete: what checkpoint writing and the two commands
(``swin2mm``, ``swin-mm-export``) share."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def written_atomically(path: str):
    """Yield a temporary path beside `path`; it becomes `path` only if the block succeeds,
    with the permissions a plain write would give (mkstemp's 0600 is for the temporary)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f'expected an existing directory for {path}, found none: '
                                f'{directory}')
    stem, extension = os.path.splitext(os.path.basename(path))
    handle, temporary = tempfile.mkstemp(prefix=f'.{stem}.partial.', suffix=extension,
                                         dir=directory)
    os.close(handle)
    try:
        yield temporary
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
