"""The ``swin-mm-export`` command (also ``tools/export.py``): a SwinBackbone to ONNX or
to a torch.export ``.pt2``, with dynamic batch, height and width, checked against eager.

The backbone comes from a config (its ``model.backbone``) or from constructor
arguments, with an optional checkpoint (any layout ``init_cfg`` loading reads). While
exporting, the backbone computes its window geometry from the traced shape
(:class:`swin_mm.geometry.ShapeGenericGeometry`), so one file serves every size.

Every failure is one line on stderr and exit status 2; the output appears only once
complete (temporary file in the same directory, then rename).
"""
import argparse
import ast
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..checkpoints.loading import load_pretrained
from ..compat import onnx_export_takes_dynamo
from ..models import SwinBackbone
from ..output_files import written_atomically
from .parsing import OneLineErrorParser

FORMATS = ('onnx', 'pt2')
DEFAULT_SIZES = ((224, 224), (227, 301), (320, 448))
# A .pt2 needs more than one window in each stage (see min_size): 224x224 has one at
# window 7 in the last stage, and the program refuses it with "Guard failed".
DEFAULT_PT2_SIZES = ((227, 301), (320, 448), (512, 512))
DEFAULT_OPSET = 17


class ExportError(ValueError):
    """A backbone that cannot be built, exported or checked as asked."""


def build_backbone(config: Optional[str] = None, arguments: Optional[dict] = None,
                   checkpoint: Optional[str] = None) -> SwinBackbone:
    """SwinBackbone in eval mode from `config`'s ``model.backbone`` (``type`` SwinBackbone
    or mmdet/mmseg's SwinTransformer, whose arguments are the same) or from constructor
    `arguments`; weights from `checkpoint`, else random (``init_weights``)."""
    if config is not None:
        from mmengine.config import Config
        try:
            backbone = dict(Config.fromfile(config).model.backbone)
        except (AttributeError, KeyError):
            raise ExportError(f'{config}: expected a config with model.backbone') from None
        kind = backbone.pop('type', None)
        if kind not in ('SwinBackbone', 'SwinTransformer'):
            raise ExportError(f'{config}: model.backbone.type must be SwinBackbone or '
                              f'SwinTransformer, found {kind!r}')
        backbone.pop('init_cfg', None)  # weights come from `checkpoint`
        backbone.pop('pretrained', None)
        backbone.update(arguments or {})
    else:
        backbone = dict(arguments or {})
    try:
        model = SwinBackbone(**backbone)
    except (TypeError, ValueError) as err:
        raise ExportError(f'cannot build SwinBackbone: {err}') from None
    if checkpoint is not None:
        load_pretrained(model, checkpoint)
    else:
        model.init_weights()
    return model.eval()


def output_names(model: SwinBackbone) -> List[str]:
    return [f'stage{i}' for i in model.out_indices]


def min_size(model: SwinBackbone) -> int:
    """Smallest height and width a dynamic ``.pt2`` accepts: every stage must be at
    least 2 tokens along each axis, or torch.export would specialise on size 1. (It
    also keeps a guard that each stage has more than one window: with window 7,
    Swin-T's program refuses 224x224 and takes 225x224 and up.)"""
    return model.patch_embed.patch_size * 2 ** (len(model.stages) - 1) + 1


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
        'Export a SwinBackbone to ONNX or .pt2 with dynamic batch/height/width and check '
        'it against eager at several sizes.'))
    parser.add_argument('output', help='file to write: .onnx or .pt2')
    parser.add_argument('--config', help='mmdet/mmseg config whose model.backbone to build')
    parser.add_argument('--arg', action='append', default=[], metavar='KEY=VALUE',
                        help='SwinBackbone constructor argument (repeatable; overrides '
                             'the config)')
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
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    kind = os.path.splitext(args.output)[1].lstrip('.')
    try:
        if kind not in FORMATS:
            raise ExportError(f'{args.output}: expected a .onnx or .pt2 file name')
        model = build_backbone(args.config, _arguments(args.arg), args.checkpoint)
        example = example_input(model)
        if kind == 'onnx':
            export_onnx(model, args.output, example, args.opset, args.dynamo)
        else:
            export_program(model, args.output, example)
        print(f'wrote {args.output} ({os.path.getsize(args.output) / 2 ** 20:.1f} MiB)')
        sizes = args.check_sizes or (DEFAULT_SIZES if kind == 'onnx' else DEFAULT_PT2_SIZES)
        rows = check_against_eager(model, args.output, sizes)
    except Exception as err:  # one line, whatever the exporter raised
        message = str(err).strip().splitlines()[0] if str(err).strip() else ''
        print(f'swin-mm-export: error: {type(err).__name__}: {message}', file=sys.stderr)
        return 2
    runtime = 'onnxruntime' if kind == 'onnx' else 'torch.export'
    worst = 0.
    for row in rows:
        worst = max([worst] + row['max_abs_diff'])
        diffs = ' '.join(f'{d:.2e}' for d in row['max_abs_diff'])
        print(f'{row["size"][0]}x{row["size"][1]}: max abs diff per output {diffs}; '
              f'{runtime} {row["seconds"] * 1e3:.1f} ms')
    if worst > args.tolerance:
        print(f'swin-mm-export: error: differs from eager by {worst:.2e} > '
              f'{args.tolerance:.0e}', file=sys.stderr)
        return 1
    return 0
