"""Deployment: one dynamic export, run at sizes other than the traced one, against eager.

- classic ONNX (opset 17) in onnxruntime at four sizes, padding cases included; its op
  types (standard domain only, no Roll/Unfold, which mmdeploy's TensorRT path lacks);
- the dynamo ONNX exporter (opset 18: the lowest it implements) the same way;
- a torch.export ``.pt2`` with dynamic batch/height/width, saved and loaded;
- torch.jit.trace, which follows the traced shape and so works at other sizes;
- the abs-position-embedding and global-attention variants; the CLI as a subprocess;
- mmdet's SwinTransformer with the same weights, side by side: its dynamic ONNX runs
  only at sizes that need no padding, which is what it is asserted to do.
"""
import os
import subprocess
import sys

import importlib.util

import onnx
import onnxruntime
import pytest
import torch

from helpers import SMALL, images
from swin_mm.commands.export import (
    build_backbone, check_against_eager, example_input, export_onnx, export_program,
    program_refuses
)
from swin_mm.geometry import CachedWindowGeometry

HAS_MMDET = importlib.util.find_spec('mmdet') is not None
SIZES = [(227, 301), (320, 448), (224, 224), (800, 1344)]
TOLERANCE = 1e-4
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def max_diff(got, expected):
    return max(float((torch.as_tensor(g) - e).abs().max()) for g, e in zip(got, expected))


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return build_backbone(arguments=SMALL)


@pytest.fixture(scope='module')
def onnx_path(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('onnx') / 'swin.onnx')
    export_onnx(model, path, example_input(model))
    return path


def test_classic_onnx_matches_eager_at_other_sizes(model, onnx_path):
    session = onnxruntime.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    for (height, width), batch in zip(SIZES, (2, 1, 1, 1)):
        x = images(batch, height, width)
        with torch.no_grad():
            expected = model(x)
        got = session.run(None, {'images': x.numpy()})
        assert [g.shape for g in got] == [tuple(e.shape) for e in expected]
        assert max_diff(got, expected) <= TOLERANCE, (height, width)


def test_onnx_graph_holds_only_standard_ops(onnx_path):
    graph = onnx.load(onnx_path).graph
    op_types = sorted({node.op_type for node in graph.node})
    assert {node.domain for node in graph.node} <= {'', 'ai.onnx'}
    assert 'Roll' not in op_types and 'Unfold' not in op_types
    # The whole list, so a change in what the graph needs shows up here.
    assert set(op_types) <= {
        'Add', 'And', 'Cast', 'Concat', 'Constant', 'ConstantOfShape', 'Conv', 'Div',
        'Equal', 'Erf', 'Gather', 'GreaterOrEqual', 'Identity', 'LayerNormalization',
        'Less', 'MatMul', 'Mod', 'Mul', 'Not', 'Pad', 'Range', 'Reshape', 'Shape', 'Slice',
        'Softmax', 'Split', 'Squeeze', 'Sub', 'Transpose', 'Unsqueeze', 'Where'}, op_types


def test_eager_after_export_is_unchanged_and_uses_its_caches(model, onnx_path):
    x = images(1, 227, 301)
    fresh = build_backbone(arguments=SMALL)
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        after, reference = model(x), fresh(x)
    assert all(torch.equal(a, r) for a, r in zip(after, reference))
    assert all(a.is_contiguous() for a in after)
    cached = model.stages[0].geometry._tables[((57, 76), torch.device('cpu'))]
    assert len(cached) == 3
    assert all(isinstance(g, CachedWindowGeometry)
               for g in model.stages[0].geometry(torch.zeros(1, 57, 76, 1), None))


HAS_EXPORT_DIMS = hasattr(torch, 'export') and hasattr(torch.export, 'Dim')
needs_mmdet = pytest.mark.skipif(not HAS_MMDET, reason='mmdet is not installed')


@pytest.mark.slow  # torch.export: about 26 s on 2 cores
@pytest.mark.skipif(not HAS_EXPORT_DIMS, reason='torch.export.Dim is new in torch 2.2')
def test_torch_export_program_is_dynamic(model, tmp_path):
    path = str(tmp_path / 'swin.pt2')
    export_program(model, path, example_input(model))
    program = torch.export.load(path).module()
    for (height, width), batch in [((227, 301), 1), ((320, 448), 3), ((512, 512), 1)]:
        x = images(batch, height, width, seed=2)
        with torch.no_grad():
            assert max_diff(program(x), model(x)) <= TOLERANCE, (height, width)
    # What the command checks before writing agrees with what the program accepts:
    # one window in a stage (224x224, 100x100) or one token (32x64) is refused.
    for height, width in [(224, 224), (225, 224), (100, 100), (57, 300), (32, 64)]:
        try:
            with torch.no_grad():
                program(images(1, height, width))
            runs = True
        except Exception:  # the program's guard
            runs = False
        assert (program_refuses(model, height, width) is None) == runs, (height, width)


@pytest.mark.slow
def test_dynamo_onnx_matches_eager_at_other_sizes(model, tmp_path):
    path = str(tmp_path / 'dynamo.onnx')
    export_onnx(model, path, example_input(model), dynamo=True)
    rows = check_against_eager(model, path, [(224, 224), (227, 301), (320, 448)], repeats=1)
    assert all(max(row['max_abs_diff']) <= TOLERANCE for row in rows), rows
    nodes = onnx.load(path).graph.node
    assert {node.domain for node in nodes} <= {'', 'ai.onnx'}
    assert not {'Roll', 'Unfold'} & {node.op_type for node in nodes}


def test_jit_trace_follows_the_input_shape(model):
    traced = torch.jit.trace(model, images(1, 224, 224))
    for height, width in SIZES[:3]:
        x = images(1, height, width, seed=1)
        with torch.no_grad():
            assert max_diff(traced(x), model(x)) <= TOLERANCE, (height, width)


@pytest.mark.slow
def test_abs_pos_embed_and_global_attention_export(tmp_path):
    torch.manual_seed(1)
    model = build_backbone(arguments=dict(SMALL, use_abs_pos_embed=True, global_attn=True,
                                          pretrain_img_size=224, out_indices=(1, 3)))
    with torch.no_grad():  # the layer starts as the identity; make it do something
        for param in model.global_attn.parameters():
            param.normal_(0, 0.05)
    path = str(tmp_path / 'variants.onnx')
    export_onnx(model, path, example_input(model))
    rows = check_against_eager(model, path, [(224, 224), (227, 301)], repeats=1)
    assert all(max(row['max_abs_diff']) <= TOLERANCE for row in rows), rows


TINY_BACKBONE = ['--arg', 'embed_dims=16', '--arg', 'depths=(1,1)', '--arg', 'num_heads=(1,2)',
                 '--arg', 'strides=(4,2)', '--arg', 'out_indices=(0,1)']


def _refused(argv, capsys, expected):
    """The command in this process: one line on stderr, status 2."""
    from swin_mm.commands.export import main
    assert main([str(argv[0]), *TINY_BACKBONE, *map(str, argv[1:])]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('swin-mm-export: error:'), lines
    assert expected in lines[0]


def test_cli_exports_and_checks(tmp_path, capsys):
    out = tmp_path / 'cli.onnx'
    command = [sys.executable, os.path.join(ROOT, 'tools', 'export.py'), str(out),
               *TINY_BACKBONE, '--check-sizes', '64x64', '65x97']
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert '65x97: max abs diff per output' in done.stdout and 'onnxruntime' in done.stdout
    assert sorted(os.listdir(tmp_path)) == ['cli.onnx']
    written = out.read_bytes()

    _refused([tmp_path / 'x.onnx', '--arg', 'embed_dims=-1'], capsys, 'SwinBackbone')
    # An existing output is replaced only with --overwrite, as swin2mm does.
    _refused([out, '--check-sizes', '64x64'], capsys, 'pass --overwrite')
    assert out.read_bytes() == written
    # A check that fails leaves nothing, not even the exported file.
    _refused([tmp_path / 'y.onnx', '--check-sizes', '64x64', '--tolerance', '0'], capsys,
             'differs from eager')
    assert sorted(os.listdir(tmp_path)) == ['cli.onnx']  # nothing half-written


@pytest.mark.skipif(not HAS_EXPORT_DIMS, reason='torch.export.Dim is new in torch 2.2')
def test_cli_refuses_sizes_a_program_cannot_take_before_writing(tmp_path, capsys):
    """Sizes are checked before anything is exported: 20x20 gives this backbone 5x5
    tokens in stage 0, one window of 7 where a program needs two; 8x8 is too small."""
    _refused([tmp_path / 'p.pt2', '--check-sizes', '96x96', '20x20'], capsys,
             'cannot check 20x20: a .pt2 of this backbone needs more than one attention '
             'window in every stage')
    _refused([tmp_path / 'p.pt2', '--check-sizes', '8x8'], capsys, 'at least 9')
    assert os.listdir(tmp_path) == []


@needs_mmdet
def test_mmdet_dynamic_onnx_runs_only_where_no_padding_is_needed(model, tmp_path):
    """Side by side: mmdet's SwinTransformer with the same weights, exported the same
    way, fails in onnxruntime at 227x301 and 320x448 (its padding is baked in)."""
    from mmdet.models.backbones import SwinTransformer
    theirs = SwinTransformer(**SMALL)
    theirs.load_state_dict(model.state_dict())
    theirs.eval()
    path = str(tmp_path / 'mmdet.onnx')
    torch.onnx.export(theirs, (images(1, 224, 224),), path, dynamo=False, opset_version=17,
                      input_names=['images'],
                      dynamic_axes={'images': {0: 'batch', 2: 'height', 3: 'width'}})
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    for height, width in [(224, 224), (448, 448)]:
        x = images(1, height, width)
        with torch.no_grad():
            assert max_diff(session.run(None, {'images': x.numpy()}), theirs(x)) <= TOLERANCE
    for height, width in [(227, 301), (320, 448)]:
        with pytest.raises(Exception, match='Reshape'):
            session.run(None, {'images': images(1, height, width).numpy()})


@needs_mmdet
def test_our_onnx_matches_mmdet_eager(model, onnx_path):
    from mmdet.models.backbones import SwinTransformer
    theirs = SwinTransformer(**SMALL)
    theirs.load_state_dict(model.state_dict())
    theirs.eval()
    session = onnxruntime.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    x = images(1, 227, 301, seed=3)
    with torch.no_grad():
        expected = theirs(x)
    assert max_diff(session.run(None, {'images': x.numpy()}), expected) <= TOLERANCE
    # Features of unit scale, so that the tolerance above is a real test.
    assert min(float(e.abs().max()) for e in expected) >= 0.5


# Swin V2 through the command: a config whose backbone is SwinV2Backbone (the
# known-answer architecture at window 8), with the official code's own file as
# --checkpoint (raw: the backbone's init_cfg loading converts it).
V2_CONFIG = """
custom_imports = dict(imports=['swin_mm'], allow_failed_imports=False)
model = dict(type='EncoderDecoder', backbone=dict(
    type='SwinV2Backbone', embed_dims=4, depths=(2, 2, 4, 2), num_heads=(2, 2, 4, 8),
    window_size=8, pretrained_window_size=(8, 8, 8, 4), drop_path_rate=0.2,
    init_cfg=dict(type='Pretrained', checkpoint='not/read.pth')))
"""


@pytest.mark.parametrize('kind, sizes', [
    ('onnx', ['64x64', '97x131']),
    pytest.param('pt2', ['227x301', '300x260'], marks=[
        pytest.mark.slow,
        pytest.mark.skipif(not HAS_EXPORT_DIMS, reason='torch.export.Dim is new in torch 2.2')]),
])
def test_cli_exports_a_swin_v2_config(kind, sizes, tmp_path, capsys):
    from swin_mm import SwinV2Backbone
    from swin_mm.commands.export import load_runner, main
    from test_swin_v2_known_answers import ANSWERS, LAYOUT_FILES
    config, out = tmp_path / 'swinv2.py', tmp_path / f'swinv2.{kind}'
    config.write_text(V2_CONFIG)
    checkpoint = str(ANSWERS / LAYOUT_FILES['official'])
    assert main([str(out), '--config', str(config), '--checkpoint', checkpoint,
                 '--check-sizes', *sizes]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert all(f'{size}: max abs diff per output' in printed for size in sizes)
    # Against a SwinV2Backbone built and loaded here, not by the command.
    eager = SwinV2Backbone(embed_dims=4, depths=(2, 2, 4, 2), num_heads=(2, 2, 4, 8),
                           window_size=8, pretrained_window_size=(8, 8, 8, 4),
                           init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    eager.init_weights()
    eager.eval()
    x = images(2, 229, 263, seed=7)
    with torch.no_grad():
        expected = eager(x)
    assert min(float(e.abs().max()) for e in expected) >= 0.5
    assert max_diff(load_runner(str(out))(x), expected) <= TOLERANCE


def test_cli_names_the_backbone_types_it_builds(tmp_path, capsys):
    _refused([tmp_path / 'x.onnx', '--arg', 'type=SwinTransformerV2'], capsys,
             "--arg type must be SwinBackbone, SwinTransformer, SwinV2Backbone, found "
             "'SwinTransformerV2'")
    _refused([tmp_path / 'x.onnx', '--arg', 'type=SwinV2Backbone', '--arg',
              'pretrained_window_size=(1, 2, 3)'], capsys, 'cannot build SwinV2Backbone')
    assert os.listdir(tmp_path) == []
