"""The library's structure, checked: dependencies point one way, and importing the plugin
(what ``custom_imports=['swin_mm']`` does) runs no kernel and loads no workbench."""
import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each layer may import only from the layers after it (and itself).
LAYERS = ['commands', 'models', 'checkpoints', 'geometry', 'kernels', 'leaves']
LEAVES = ('compat', 'output_files')  # modules that import nothing of swin_mm


def _layer(module: str) -> str:
    """'swin_mm.checkpoints.fitting' -> 'checkpoints'; top-level leaves -> 'leaves';
    the package itself and names imported from it (``__version__``) -> ''."""
    part = module.split('.')[1] if module.count('.') else ''
    return 'leaves' if part in LEAVES else part if part in LAYERS else ''


def _rank(module: str) -> int:
    """Position in LAYERS; the package's own top level (``swin_mm/__init__``, which
    imports the models) sits with the commands."""
    return LAYERS.index(_layer(module) or 'commands')


def _swin_mm_imports():
    """{module: {swin_mm modules it imports}} read from the source (relative imports
    resolved), for every module of the swin_mm package."""
    imports = {}
    root = os.path.join(REPO, 'swin_mm')
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(directory, name)
            parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
            package = parts[:-1] if parts[-1] != '__init__' else parts[:-1]
            module = '.'.join(parts if parts[-1] != '__init__' else parts[:-1])
            found = set()
            for node in ast.walk(ast.parse(open(path).read())):
                if isinstance(node, ast.ImportFrom):
                    base = package[:len(package) - node.level + 1] if node.level else []
                    target = '.'.join(base + ([node.module] if node.module else []))
                    found.add(target)
                    found.update(f'{target}.{alias.name}' for alias in node.names)
                elif isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
            imports[module] = {m for m in found if m.startswith('swin_mm.')}
    return imports


def test_checkpoints_import_nothing_from_models_or_commands():
    imports = _swin_mm_imports()
    offending = {module: sorted(m for m in targets if _layer(m) in ('models', 'commands'))
                 for module, targets in imports.items() if _layer(module) == 'checkpoints'}
    assert not any(offending.values()), offending


def test_every_dependency_points_down_the_layers():
    """commands (and the package's __init__) -> models -> checkpoints -> geometry ->
    kernels -> leaves."""
    upward = [(module, target) for module, targets in _swin_mm_imports().items()
              for target in targets if _rank(target) < _rank(module)]
    assert not upward


RECORD_IMPORT = r'''
import sys
import torch, mmcv.cnn, mmcv.cnn.bricks.drop, mmengine.model, mmengine.registry  # deps
from torch.utils._python_dispatch import TorchDispatchMode

class Record(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))

with Record() as on_import:
    import swin_mm
with Record() as on_build:  # the control: building an 'auto' model probes the kernels
    swin_mm.SwinBackbone(embed_dims=8, depths=(1,), num_heads=(1,), strides=(4,),
                         out_indices=(0,))
print(len(on_import.ops), on_import.ops[:5])
print(int(any('flash' in op for op in on_build.ops)))
print(' '.join(sorted(sys.modules)))
'''


@pytest.fixture(scope='module')
def import_record():
    lines = subprocess.run([sys.executable, '-c', RECORD_IMPORT], capture_output=True,
                           text=True, check=True, timeout=300, cwd=REPO,
                           env={**os.environ, 'PYTHONPATH': REPO}).stdout.splitlines()
    return lines


def test_import_swin_mm_runs_no_kernel(import_record):
    """No op runs at import (the kernel probes run when the first model is built:
    the control shows they are seen when they run)."""
    assert import_record[0].startswith('0 '), import_record[0]
    assert import_record[1] == '1'


def test_import_swin_mm_loads_only_the_library(import_record):
    """Models, geometry, kernels, checkpoint functions and their leaves only: no
    commands, benchmark, plotting, synthetic data, runner setup or test peers."""
    loaded = import_record[2].split()
    ours = {m for m in loaded if m.startswith('swin_mm')}
    library = {'', 'models', 'checkpoints', 'geometry', 'kernels', 'leaves'}
    assert ours and {_layer(m) for m in ours} <= library, sorted(ours)
    assert not {'swin_mm_dev', 'matplotlib', 'pycocotools', 'timm', 'mmdet', 'mmseg',
                'mmpretrain'} & {m.split('.')[0] for m in loaded}
