"""The ``swin2mm`` command (also ``tools/swin2mm.py``): convert a Swin checkpoint file to this plugin's layout.

Every failure is one line on stderr and exit status 2, and nothing is written: the
destination appears only once complete (temporary file, then rename).
"""
import argparse
import hashlib
import os
import sys
from typing import List, Optional

import torch

from .. import __version__
from ..checkpoints.errors import CheckpointError
from ..checkpoints.layouts import LAYOUTS, Conversion, convert_checkpoint
from ..checkpoints.reading import read_checkpoint, write_checkpoint
from ..models import SwinBackbone
from .model_arguments import check_shapes, infer_architecture
from .parsing import OneLineErrorParser


# Relative to the output scale: float32 rounding of two orders of summation.
VERIFY_TOLERANCE = 1e-4


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = OneLineErrorParser(prog='swin2mm', description=(
        'Convert a Swin v1 checkpoint (official, official detection/segmentation release, '
        'timm, mmpretrain or mmdet/mmseg layout) to the swin_mm (mmdet/mmseg) layout.'))
    parser.add_argument('src', help='checkpoint to convert (never modified)')
    parser.add_argument('dst', help='where to write {"state_dict": ..., "meta": ...}')
    parser.add_argument('--layout', choices=LAYOUTS, help='force a layout instead of detecting')
    parser.add_argument('--verify', action='store_true',
                        help='build SwinBackbone from the inferred architecture, load the '
                             'result strictly and check one forward pass of its fast '
                             'kernels against the plain-ops reference')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing DST')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='allow arbitrary unpickling of SRC (only for trusted files)')
    return parser.parse_args(argv)


def _check_destination(src: str, dst: str, overwrite: bool) -> None:
    if os.path.abspath(src) == os.path.abspath(dst) or (
            os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst)):
        raise CheckpointError(f'expected DST different from SRC, found both {dst}')
    if os.path.isdir(dst):
        raise CheckpointError(f'expected DST to be a file path, found a directory: {dst}')
    if os.path.exists(dst) and not overwrite:
        raise CheckpointError(f'expected DST not to exist, found {dst} (pass --overwrite)')
    parent = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(parent):
        raise CheckpointError(f'expected an existing directory for DST, found none: {parent}')


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(1 << 24), b''):
            digest.update(chunk)
    return digest.hexdigest()


def verify(conversion: Conversion, architecture: dict) -> None:
    """Strict load into a SwinBackbone of the inferred architecture, then one forward of
    the fast kernels checked against the plain-ops reference: a torch whose fused kernel
    misbehaves (the CPU flash kernel of torch 2.3-2.7 misread strided masks) gives finite
    but wrong features, which only a comparison can see."""
    arguments = {**architecture, 'drop_path_rate': 0.0,
                 'pretrain_img_size': architecture['pretrain_img_size'] or 224}
    images = torch.randn(1, architecture['in_channels'], 128, 160,
                         generator=torch.Generator().manual_seed(0))
    features = {}
    for kernels in ('auto', 'reference'):
        model = SwinBackbone(**arguments, kernels=kernels).eval()
        model.load_state_dict(conversion.backbone, strict=True)
        with torch.no_grad():
            features[kernels] = model(images)
    if not all(torch.isfinite(out).all() for out in features['reference']):
        raise CheckpointError('verify: expected finite features, found NaN or inf')
    for stage, (fast, plain) in enumerate(zip(features['auto'], features['reference'])):
        error = float((fast - plain).abs().max()) / max(1.0, float(plain.abs().max()))
        if not error <= VERIFY_TOLERANCE:
            raise CheckpointError(
                f'verify: expected the fast kernels to match the reference within '
                f'{VERIFY_TOLERANCE:g}, found {error:.3g} at stage {stage} (torch '
                f'{torch.__version__}); build SwinBackbone with kernels="reference"')


def _describe(conversion: Conversion, architecture: dict) -> List[str]:
    size = architecture['pretrain_img_size']
    return [
        f'layout: {conversion.layout}',
        'architecture: embed_dims={embed_dims} depths={depths} num_heads={num_heads} '
        'window_size={window_size} mlp_ratio={mlp_ratio:g} '.format(**architecture)
        + f'pretrain_img_size={size if size else "unknown"} '
        f'use_abs_pos_embed={architecture["use_abs_pos_embed"]} '
        f'out_indices={architecture["out_indices"]}',
        f'tensors: {conversion.renamed} renamed ({conversion.reordered} of them reordered), '
        f'{len(conversion.dropped)} dropped, {conversion.kept} kept, '
        f'{conversion.generated} relative_position_index rebuilt from the window',
    ]


def convert_file(src: str, dst: str, layout: Optional[str] = None, overwrite: bool = False,
                 unsafe_load: bool = False, run_verify: bool = False) -> List[str]:
    """Convert SRC into DST; returns the report lines. Raises CheckpointError."""
    _check_destination(src, dst, overwrite)
    checkpoint = read_checkpoint(src, unsafe=unsafe_load)
    conversion = convert_checkpoint(checkpoint, layout=layout)
    architecture = infer_architecture(conversion.backbone, conversion.pretrain_img_size)
    check_shapes(conversion.backbone, architecture)
    lines = _describe(conversion, architecture)
    if run_verify:
        verify(conversion, architecture)
        lines.append('verify: strict load and one forward pass OK '
                     '(fast kernels match the reference)')
    meta = dict(converted_by=f'swin_mm {__version__} tools/swin2mm.py',
                source=os.path.abspath(src), source_sha256=_sha256(src),
                layout=conversion.layout, architecture=architecture)
    write_checkpoint({'state_dict': conversion.state_dict(), 'meta': meta}, dst)
    lines.append(f'wrote: {dst}')
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exit_request:  # usage errors (one line, status 2) and --help
        return exit_request.code
    try:
        lines = convert_file(args.src, args.dst, args.layout, args.overwrite, args.unsafe_load,
                             args.verify)
    except (CheckpointError, OSError, RuntimeError) as err:
        message = ' '.join(str(err).split())
        print(f'swin2mm: error: {message}', file=sys.stderr)
        return 2
    print('\n'.join(lines))
    return 0
