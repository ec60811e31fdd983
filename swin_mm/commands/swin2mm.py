"""The ``swin2mm`` command (also ``tools/swin2mm.py``): convert a Swin v1 or Swin V2
checkpoint file to this plugin's layout.

What differs between the two is one :class:`SwinVersion` each (layouts, conversion,
inferred architecture, the backbone the result loads into), chosen once per file by
:func:`swin_version`; reading, destination checks, reporting, ``--verify`` and writing
are shared. Every failure is one line on stderr and exit status 2, and nothing is
written: the destination appears only once complete (temporary file, then rename).
"""
import argparse
import hashlib
import os
import sys
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch

from .. import __version__
from ..checkpoints.errors import CheckpointError
from ..checkpoints.layouts import LAYOUTS, Conversion, convert_state_dict, unwrap
from ..checkpoints.reading import read_checkpoint, write_checkpoint
from ..checkpoints.v2_layouts import V2_LAYOUTS, convert_v2_state_dict, is_v2_state_dict
from ..models import SwinBackbone, SwinV2Backbone
from .model_arguments import check_shapes, infer_architecture
from .parsing import OneLineErrorParser
from .v2_model_arguments import infer_v2_architecture, v2_model_arguments


# Relative to the output scale: float32 rounding of two orders of summation.
VERIFY_TOLERANCE = 1e-4


def _unknown(value) -> str:
    return 'unknown' if value is None else str(value)


def _v1_line(architecture: dict, conversion: Conversion) -> str:
    return ('embed_dims={embed_dims} depths={depths} num_heads={num_heads} '
            'window_size={window_size} mlp_ratio={mlp_ratio:g} '.format(**architecture)
            + f'pretrain_img_size={_unknown(architecture["pretrain_img_size"])} '
            f'use_abs_pos_embed={architecture["use_abs_pos_embed"]} '
            f'out_indices={architecture["out_indices"]}')


def _v2_line(architecture: dict, conversion: Conversion) -> str:
    line = ('embed_dims={embed_dims} depths={depths} num_heads={num_heads} '
            'mlp_ratio={mlp_ratio:g} '.format(**architecture)
            + f'window_size={_unknown(architecture["window_size"])} '
            f'pretrained_window_size={_unknown(architecture["pretrained_window_size"])} '
            f'out_indices={architecture["out_indices"]}')
    if architecture['extra_norm_every_n_blocks']:
        line += f' extra_norm_every_n_blocks={architecture["extra_norm_every_n_blocks"]}'
    if conversion.windows is None:
        return line + ' (the file has no relative_coords_table buffers to say its windows)'
    if len(set(conversion.windows)) > 1:
        sides = tuple(w[0] if w[0] == w[1] else w for w in conversion.windows)
        return line + (f' (stage windows in the file {sides}: the official code shrinks '
                       f'a window to a smaller map)')
    return line


@dataclass(frozen=True)
class SwinVersion:
    """What swin2mm does for the files of one Swin version."""
    name: str
    layouts: Tuple[str, ...]
    convert: Callable[..., Conversion]        # (unwrapped state dict, layout) -> Conversion
    infer: Callable[[Conversion], dict]       # the architecture the report and meta give
    backbone: type                            # the model the output loads into
    arguments: Callable[[dict], dict]         # architecture -> its constructor arguments
    describe: Callable[[dict, Conversion], str]  # the report's architecture line


SWIN_V1 = SwinVersion(
    'Swin v1', LAYOUTS, convert_state_dict,
    lambda conversion: infer_architecture(conversion.backbone, conversion.pretrain_img_size),
    SwinBackbone,
    lambda architecture: dict(architecture,
                              pretrain_img_size=architecture['pretrain_img_size'] or 224),
    _v1_line)
SWIN_V2 = SwinVersion('Swin V2', V2_LAYOUTS, convert_v2_state_dict, infer_v2_architecture,
                      SwinV2Backbone, v2_model_arguments, _v2_line)


def swin_version(state_dict) -> SwinVersion:
    """The one place that tells Swin v1 files from Swin V2 files."""
    return SWIN_V2 if is_v2_state_dict(state_dict) else SWIN_V1


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = OneLineErrorParser(prog='swin2mm', description=(
        'Convert a Swin v1 checkpoint (official, official detection/segmentation release, '
        'timm, mmpretrain or mmdet/mmseg layout) or a Swin V2 checkpoint (official, timm, '
        'mmpretrain or torchvision layout) to the swin_mm (mmdet/mmseg) layout; the '
        'report and the meta say which backbone it loads into (SwinBackbone or '
        'SwinV2Backbone).'))
    parser.add_argument('src', help='checkpoint to convert (never modified)')
    parser.add_argument('dst', help='where to write {"state_dict": ..., "meta": ...}')
    parser.add_argument('--layout', choices=sorted(set(LAYOUTS) | set(V2_LAYOUTS)),
                        help='force a layout instead of detecting (Swin v1: '
                             f'{", ".join(LAYOUTS)}; Swin V2: {", ".join(V2_LAYOUTS)})')
    parser.add_argument('--verify', action='store_true',
                        help='build the backbone of the inferred architecture, load the '
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


def verify(conversion: Conversion, version: SwinVersion, architecture: dict) -> None:
    """Strict load into the backbone of the inferred architecture, then one forward of
    the fast kernels checked against the plain-ops reference: a torch whose fused kernel
    misbehaves (the CPU flash kernel of torch 2.3-2.7 misread strided masks) gives finite
    but wrong features, which only a comparison can see."""
    arguments = {**version.arguments(architecture), 'drop_path_rate': 0.0}
    images = torch.randn(1, architecture['in_channels'], 128, 160,
                         generator=torch.Generator().manual_seed(0))
    features = {}
    for kernels in ('auto', 'reference'):
        model = version.backbone(**arguments, kernels=kernels).eval()
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
                f'{torch.__version__}); build {version.backbone.__name__} with '
                f'kernels="reference"')


def _describe(conversion: Conversion, version: SwinVersion, architecture: dict) -> List[str]:
    rebuilt = (f', {conversion.generated} relative_position_index rebuilt from the window'
               if conversion.generated else '')
    return [
        f'layout: {conversion.layout} ({version.name}: load into {version.backbone.__name__})',
        'architecture: ' + version.describe(architecture, conversion),
        f'tensors: {conversion.renamed} renamed ({conversion.reordered} of them reordered), '
        f'{len(conversion.dropped)} dropped, {conversion.kept} kept{rebuilt}',
    ]


def convert_file(src: str, dst: str, layout: Optional[str] = None, overwrite: bool = False,
                 unsafe_load: bool = False, run_verify: bool = False) -> List[str]:
    """Convert SRC into DST; returns the report lines. Raises CheckpointError."""
    _check_destination(src, dst, overwrite)
    checkpoint = read_checkpoint(src, unsafe=unsafe_load)
    state_dict = unwrap(checkpoint)
    version = swin_version(state_dict)
    if layout is not None and layout not in version.layouts:
        raise CheckpointError(f'--layout {layout}: expected a {version.name} layout '
                              f'({", ".join(version.layouts)}) for this {version.name} '
                              f'file, found {layout!r}')
    conversion = version.convert(state_dict, layout)
    architecture = version.infer(conversion)
    check_shapes(conversion.backbone, version.backbone, version.arguments(architecture))
    lines = _describe(conversion, version, architecture)
    if run_verify:
        verify(conversion, version, architecture)
        lines.append('verify: strict load and one forward pass OK '
                     '(fast kernels match the reference)')
    meta = dict(converted_by=f'swin_mm {__version__} tools/swin2mm.py',
                source=os.path.abspath(src), source_sha256=_sha256(src),
                layout=conversion.layout, backbone=version.backbone.__name__,
                architecture=architecture)
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
