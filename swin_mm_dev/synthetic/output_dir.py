"""Build a dataset folder in a temporary sibling and rename it into place at the end.

An interrupted or failed generation therefore never leaves a half-written dataset
where a config would pick it up.
"""
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def build_atomically(target: Path):
    target = Path(target)
    if target.exists():
        raise FileExistsError(f'expected no existing {target}, found one; remove it or '
                              'choose another output folder')
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{target.name}.', dir=target.parent))
    try:
        yield tmp
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
