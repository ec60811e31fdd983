"""The ``swin-mm-export`` command (also ``tools/export.py``): a SwinBackbone or
SwinV2Backbone to ONNX or to a torch.export ``.pt2``, with dynamic batch, height and
width, checked against eager.

The backbone comes from a config (its ``model.backbone``) or from constructor
arguments (``type=SwinV2Backbone`` among them for V2), with an optional checkpoint (any
layout the backbone's ``init_cfg`` loading reads). While
exporting, the backbone computes its window geometry from the traced shape
(:class:`swin_mm.geometry.ShapeGenericGeometry`), so one file serves every size.

Every failure is one line on stderr and exit status 2; the output appears only once
written and checked (temporary file in the same directory, then rename), and replaces
an existing file only with ``--overwrite``, as swin2mm does.
"""
import argparse
import ast
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..compat import onnx_export_takes_dynamo
from ..models import SwinBackbone, SwinV2Backbone
from ..output_files import written_atomically
from .parsing import OneLineErrorParser

FORMATS = ('onnx', 'pt2')
DEFAULT_SIZES = ((224, 224), (227, 301), (320, 448))
# A .pt2 needs more than one window in each stage (see program_refuses): 224x224 has
# one at window 7 in the last stage, and the program refuses it.
DEFAULT_PT2_SIZES = ((227, 301), (320, 448), (512, 512))
DEFAULT_OPSET = 17
# model.backbone types the command builds (mmdet/mmseg's SwinTransformer takes the same
# arguments as SwinBackbone).
BACKBONES = {'SwinBackbone': SwinBackbone, 'SwinTransformer': SwinBackbone,
             'SwinV2Backbone': SwinV2Backbone}


class ExportError(ValueError):
    """A backbone that cannot be built, exported or checked as asked."""


def build_backbone(config: Optional[str] = None, arguments: Optional[dict] = None,
                   checkpoint: Optional[str] = None) -> SwinBackbone:
    """The backbone in eval mode from `config`'s ``model.backbone`` (``type`` one of
    :data:`BACKBONES`) or from constructor `arguments` (``type`` among them, default
    SwinBackbone); weights from `checkpoint` through the backbone's own ``init_cfg``
    loading (any layout of its version), else random (``init_weights``)."""
    if config is not None:
        from mmengine.config import Config
        try:
            backbone = dict(Config.fromfile(config).model.backbone)
        except (AttributeError, KeyError):
            raise ExportError(f'{config}: expected a config with model.backbone') from None
        where = f'{config}: model.backbone.type'
        backbone.pop('pretrained', None)
        backbone.update(arguments or {})
    else:
        backbone = {'type': 'SwinBackbone', **(arguments or {})}
        where = '--arg type'
    kind = backbone.pop('type', None)
    if kind not in BACKBONES:
        raise ExportError(f'{where} must be {", ".join(BACKBONES)}, found {kind!r}')
    # Weights come from `checkpoint` only.
    backbone['init_cfg'] = None if checkpoint is None else dict(type='Pretrained',
                                                                 checkpoint=checkpoint)
    try:
        model = BACKBONES[kind](**backbone)
    except (TypeError, ValueError) as err:
        raise ExportError(f'cannot build {kind}: {err}') from None
    model.init_weights()
    return model.eval()


def output_names(model: SwinBackbone) -> List[str]:
    return [f'stage{i}' for i in model.out_indices]


def min_size(model: SwinBackbone) -> int:
    """Smallest height and width a dynamic ``.pt2`` accepts: every stage must be at
    least 2 tokens along each axis, or torch.export would specialise on size 1."""
    return model.patch_embed.patch_size * 2 ** (len(model.stages) - 1) + 1


def program_refuses(model: SwinBackbone, height: int, width: int) -> Optional[str]:
    """Why a dynamic ``.pt2`` of `model` cannot run at `height` x `width`, or None.

    Besides :func:`min_size`, torch.export keeps a guard that every stage has more than
    one window (its windows never shrink): with window 7, Swin-T's program refuses
    224x224 (7x7 tokens in the last stage: one window) and takes 225x224 and up.
    """
    low = min_size(model)
    if min(height, width) < low:
        return f'a .pt2 of this backbone takes heights and widths of at least {low}'
    patch = model.patch_embed.patch_size
    tokens = [-(-height // patch), -(-width // patch)]
    for index, stage in enumerate(model.stages):
        wh, ww = stage.geometry.window
        windows = (-(-tokens[0] // wh)) * (-(-tokens[1] // ww))
        if windows < 2:
            return (f'a .pt2 of this backbone needs more than one attention window in '
                    f'every stage, and {height}x{width} leaves stage {index} one '
                    f'({tokens[0]}x{tokens[1]} tokens, window {wh}x{ww}); use ONNX, '
                    f'which takes every size')
        tokens = [-(-t // 2) for t in tokens]
    return None


def export_onnx(model: SwinBackbone, path: str, example: torch.Tensor,
                opset: int = DEFAULT_OPSET, dynamo: bool = False) -> None:
    """ONNX with dynamic batch, height and width: the classic TorchScript exporter,
    or with `dynamo` the torch.export-based one."""
    names = output_names(model)
    with written_atomically(path) as temporary, torch.no_grad():
        if dynamo:
            batch, height, width = _dims(model)
            torch.onnx.export(model, (example,), temporary, dynamo=True, opset_version=opset,
                              input_names=['images'], output_names=names,
                              dynamic_shapes={'images': {0: batch, 2: height, 3: width}},
                              external_data=False)
        else:
            axes = {'images': {0: 'batch', 2: 'height', 3: 'width'}}
            axes.update({name: {0: 'batch', 2: f'{name}_height', 3: f'{name}_width'}
                         for name in names})
            kwargs = {'dynamo': False} if onnx_export_takes_dynamo() else {}
            torch.onnx.export(model, (example,), temporary, opset_version=opset,
                              input_names=['images'], output_names=names,
                              dynamic_axes=axes, **kwargs)


def _dims(model: SwinBackbone):
    from torch.export import Dim
    low = min_size(model)
    return (Dim('batch', min=1, max=1024), Dim('height', min=low, max=16384),
            Dim('width', min=low, max=16384))


def export_program(model: SwinBackbone, path: str, example: torch.Tensor) -> None:
    """torch.export.export with dynamic batch, height and width, saved as ``.pt2``."""
    if not hasattr(torch, 'export') or not hasattr(torch.export, 'Dim'):
        raise ExportError(f'torch {torch.__version__} has no torch.export.Dim; use ONNX')
    batch, height, width = _dims(model)
    with torch.no_grad():
        program = torch.export.export(model, (example,),
                                      dynamic_shapes={'images': {0: batch, 2: height,
                                                                 3: width}})
    with written_atomically(path) as temporary:
        torch.export.save(program, temporary)


def example_input(model: SwinBackbone, batch: int = 2) -> torch.Tensor:
    """The traced example: more than one window in every stage at the default window,
    not a multiple of the patch or window (torch.export takes branch decisions from it;
    the exported graph holds for other sizes)."""
    return torch.randn(batch, model.in_channels, 461, 613,
                       generator=torch.Generator().manual_seed(0))


def load_runner(path: str):
    """A callable images (numpy or tensor) -> list of numpy outputs for `path`."""
    if path.endswith('.onnx'):
        import onnxruntime
        session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
        name = session.get_inputs()[0].name
        return lambda images: session.run(None, {name: _numpy(images)})
    module = torch.export.load(path).module()

    def run(images):
        with torch.no_grad():
            return [o.numpy() for o in module(torch.as_tensor(images))]
    return run


def _numpy(images):
    return images.numpy() if isinstance(images, torch.Tensor) else images


def check_against_eager(model: SwinBackbone, path: str,
                        sizes: Sequence[Tuple[int, int]] = DEFAULT_SIZES,
                        batch: int = 1, repeats: int = 3) -> List[Dict]:
    """Per size: the max abs difference of each output from eager, and the exported
    file's best time of `repeats` runs (onnxruntime for ONNX)."""
    run = load_runner(path)
    rows = []
    for height, width in sizes:
        images = torch.randn(batch, model.in_channels, height, width,
                             generator=torch.Generator().manual_seed(height * width))
        with torch.no_grad():
            expected = model(images)
        got = run(images)  # also the warm-up
        best = float('inf')
        for _ in range(repeats):
            start = time.perf_counter()
            run(images)
            best = min(best, time.perf_counter() - start)
        diffs = [float(abs(torch.from_numpy(g) - e).max()) for g, e in zip(got, expected)]
        rows.append(dict(size=(height, width), max_abs_diff=diffs, seconds=best))
    return rows


def _size(text: str) -> Tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected HxW such as 227x301, got {text!r}')
    return height, width


def _arguments(pairs: Sequence[str]) -> dict:
    """KEY=VALUE pairs with Python literal values (embed_dims=32 depths=(2,2,2,2))."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep:
            raise ExportError(f'--arg expects KEY=VALUE, got {pair!r}')
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = OneLineErrorParser(prog='swin-mm-export', description=(
        'Export a SwinBackbone or SwinV2Backbone to ONNX or .pt2 with dynamic '
        'batch/height/width and check it against eager at several sizes.'))
    parser.add_argument('output', help='file to write: .onnx or .pt2')
    parser.add_argument('--config', help='mmdet/mmseg config whose model.backbone to build')
    parser.add_argument('--arg', action='append', default=[], metavar='KEY=VALUE',
                        help='constructor argument (repeatable; overrides the config); '
                             'type=SwinV2Backbone builds Swin V2 (default SwinBackbone)')
    parser.add_argument('--checkpoint', help='weights (any layout swin_mm reads); random '
                                             'if omitted')
    parser.add_argument('--dynamo', action='store_true',
                        help='ONNX through the torch.export-based exporter')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET)
    parser.add_argument('--check-sizes', type=_size, nargs='+', metavar='HxW',
                        help='sizes to check against eager (default: 224x224 227x301 '
                             '320x448 for ONNX, 227x301 320x448 512x512 for .pt2)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='max abs difference from eager allowed (default 1e-4)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    kind = os.path.splitext(args.output)[1].lstrip('.')
    sizes = args.check_sizes or (DEFAULT_SIZES if kind == 'onnx' else DEFAULT_PT2_SIZES)
    try:
        if kind not in FORMATS:
            raise ExportError(f'{args.output}: expected a .onnx or .pt2 file name')
        if os.path.exists(args.output) and not args.overwrite:
            raise ExportError(f'{args.output} exists; pass --overwrite to replace it')
        model = build_backbone(args.config, _arguments(args.arg), args.checkpoint)
        refusals = [program_refuses(model, *size) for size in sizes] if kind == 'pt2' else []
        for (height, width), refusal in zip(sizes, refusals):
            if refusal:
                raise ExportError(f'cannot check {height}x{width}: {refusal}')
        # Written under a temporary name, which becomes the output only once checked.
        with written_atomically(args.output) as temporary:
            if kind == 'onnx':
                export_onnx(model, temporary, example_input(model), args.opset, args.dynamo)
            else:
                export_program(model, temporary, example_input(model))
            rows = check_against_eager(model, temporary, sizes)
            worst = max(max(row['max_abs_diff']) for row in rows)
            _print_rows(rows, 'onnxruntime' if kind == 'onnx' else 'torch.export')
            if worst > args.tolerance:
                raise ExportError(f'the export differs from eager by {worst:.2e} > '
                                  f'{args.tolerance:.0e}; nothing written')
            megabytes = os.path.getsize(temporary) / 2 ** 20
    except Exception as err:  # one line, whatever the exporter raised
        message = str(err).strip().splitlines()[0] if str(err).strip() else ''
        name = '' if isinstance(err, ExportError) else f'{type(err).__name__}: '
        print(f'swin-mm-export: error: {name}{message}', file=sys.stderr)
        return 2
    print(f'wrote {args.output} ({megabytes:.1f} MiB)')
    return 0


def _print_rows(rows: List[Dict], runtime: str) -> None:
    for row in rows:
        diffs = ' '.join(f'{d:.2e}' for d in row['max_abs_diff'])
        print(f'{row["size"][0]}x{row["size"][1]}: max abs diff per output {diffs}; '
              f'{runtime} {row["seconds"] * 1e3:.1f} ms')
