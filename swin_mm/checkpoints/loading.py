"""``init_cfg=dict(type='Pretrained')``: read any Swin v1 checkpoint, convert its layout,
fit it to the backbone and say what was loaded, in one log line per finding."""
import logging
import re
from typing import Callable, Optional

from mmengine.logging import print_log

from .errors import CheckpointError, DownloadError
from .fitting import fit_state_dict
from .layouts import to_backbone_state_dict
from .reading import read_checkpoint

_OUTPUT_NORM = re.compile(r'norm(\d+)\.(weight|bias)')


def _summary(keys) -> str:
    keys = sorted(keys)
    shown = ', '.join(keys[:8])
    return f'{len(keys)} ({shown}{", ..." if len(keys) > 8 else ""})'


def _missing_by_design(missing, state_dict, last_stage: int):
    """Split missing keys into what the checkpoint cannot have, with the reason, and the
    rest (which it should have had).

    Classification checkpoints (and files converted from them) have at most one final
    norm (our last output norm), no per-stage output norms; no published checkpoint has
    the HTC++ global attention layer, which is new in the detector.
    """
    expected, rest = [], list(missing)
    norms_in_file = {int(m.group(1)) for k in state_dict for m in [_OUTPUT_NORM.fullmatch(k)] if m}
    norms_missing = sorted({k.split('.')[0] for k in missing if _OUTPUT_NORM.fullmatch(k)})
    if norms_missing and norms_in_file <= {last_stage}:
        expected.append((f'{", ".join(norms_missing)} keep their initialisation',
                         'the checkpoint has no per-stage output norms, as classification '
                         'checkpoints do'))
        rest = [k for k in rest if not _OUTPUT_NORM.fullmatch(k)]
    attention = [k for k in rest if k.startswith('global_attn.')]
    if attention and not any(k.startswith('global_attn.') for k in state_dict):
        expected.append((f'global_attn ({len(attention)} tensors) starts as an identity',
                         'the HTC++ global attention layer is new: no released checkpoint '
                         'has it'))
        rest = [k for k in rest if not k.startswith('global_attn.')]
    return expected, rest


def load_pretrained(model, path: str, prefix: Optional[str] = None,
                    to_backbone: Callable = to_backbone_state_dict) -> None:
    """Load `path` into `model` (a backbone with ``fit_target()`` and ``stages``, such as
    ``SwinBackbone``) non-strictly: keys missing by design are logged as INFO with the
    reason, other missing and unexpected keys as one WARNING line each. `to_backbone`
    converts the read checkpoint to the model's names: ``(checkpoint, prefix) ->
    (state dict, layout name)`` (Swin V1's layouts by default)."""
    try:
        checkpoint = read_checkpoint(path)
    except DownloadError as err:
        raise DownloadError(f'{err}; without network access, download it elsewhere and set '
                            f'model.backbone.init_cfg.checkpoint to the local file '
                            f'(--cfg-options model.backbone.init_cfg.checkpoint=PATH)') from None
    state_dict, layout = to_backbone(checkpoint, prefix=prefix)
    target = model.fit_target()
    fit_state_dict(state_dict, target)  # what the load hook would do, to check shapes first
    shapes = target.state
    mismatched = [k for k, v in state_dict.items() if k in shapes and v.shape != shapes[k].shape]
    if mismatched:
        k = mismatched[0]
        raise CheckpointError(f'{path}: {k} expected shape {tuple(shapes[k].shape)}, found '
                              f'{tuple(state_dict[k].shape)} (and {len(mismatched) - 1} more)')
    result = model.load_state_dict(state_dict, strict=False)
    name = type(model).__name__
    print_log(f'{name}: loaded {path} ({layout} layout, {len(state_dict)} tensors)',
              logger='current')
    expected, missing = _missing_by_design(result.missing_keys, state_dict,
                                           last_stage=len(model.stages) - 1)
    for what, reason in expected:
        print_log(f'{name}: {what} ({reason})', logger='current', level=logging.INFO)
    if missing:
        print_log(f'{name}: missing keys {_summary(missing)}',
                  logger='current', level=logging.WARNING)
    if result.unexpected_keys:
        print_log(f'{name}: unexpected keys {_summary(result.unexpected_keys)}',
                  logger='current', level=logging.WARNING)
