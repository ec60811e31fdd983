"""Known answers for the window geometry (swin_mm.geometry), all in this file.

- partition and merge of the cached tables, through both kernel implementations,
  against pad -> roll -> cut written in plain torch ops (tests/helpers.py), forward and
  backward;
- the shift mask against the official 3x3 slice labelling (microsoft/Swin-Transformer,
  ``SwinTransformerBlock.__init__``), compared where masked: ours is -inf, theirs -100;
  and its exact zero probabilities;
- non-square windows by value against torchvision's ``shifted_window_attention``
  inside its ``SwinTransformerBlock``;
- the export-time ShapeGenericGeometry against all of the above, and which of the two
  a stage picks.
"""
import dataclasses

import pytest
import torch
from torchvision.models.swin_transformer import SwinTransformerBlock

from helpers import pad_roll_cut, randomize_, uncut_unroll_crop
from swin_mm.geometry import (
    CachedWindowGeometry, ShapeGenericGeometry, StageGeometry, WindowTables
)
from swin_mm.kernels import REFERENCE_KERNELS, select_kernels
from swin_mm.kernels.partition import lean_merge, lean_partition
from swin_mm.models.swin_block import SwinBlock

CPU = torch.device('cpu')
# The lean partition/merge set explicitly: 'auto' picks them on the CPU today, but this
# file tests the implementation, not the selection.
IMPLEMENTATIONS = {
    'reference': REFERENCE_KERNELS,
    'lean': dataclasses.replace(REFERENCE_KERNELS, partition=lean_partition, merge=lean_merge),
}
MAP_SIZES = [(1, 1), (5, 9), (13, 22), (57, 76)]
WINDOWS = [(7, 7), (3, 5), (7, 4), (1, 1)]


def half_window(window):
    return window[0] // 2, window[1] // 2


def geometry_cases():
    """(map size, window, shift): every size and window, unshifted and half-shifted."""
    return [pytest.param(hw, window, shift, id=f'{hw}-w{window}-s{shift}')
            for hw in MAP_SIZES for window in WINDOWS
            for shift in sorted({(0, 0), half_window(window)})]


def cached(hw, window, shift, kernels=REFERENCE_KERNELS):
    return CachedWindowGeometry(WindowTables.build(hw, window, shift, CPU), kernels)


def random_map(hw, channels=3, batch=2, seed=0):
    """No exact zeros, so a zero in a partition can only be padding."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, *hw, channels, generator=gen) + 1.0


@pytest.mark.parametrize('implementation', sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize('hw,window,shift', geometry_cases())
def test_partition_is_pad_roll_cut(hw, window, shift, implementation):
    geometry = cached(hw, window, shift, IMPLEMENTATIONS[implementation])
    x = random_map(hw)
    windows = geometry.partition(x)
    expected = pad_roll_cut(x, window, shift)
    assert torch.equal(windows, expected)
    padding = pad_roll_cut(torch.ones_like(x), window, shift) == 0
    slots_per_image = expected.shape[0] // x.shape[0] * window[0] * window[1]
    assert int(padding.sum()) == x.shape[0] * x.shape[-1] * (slots_per_image - hw[0] * hw[1])
    assert (windows[padding] == 0).all() and (windows[~padding] != 0).all()


@pytest.mark.parametrize('implementation', sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize('hw,window,shift', geometry_cases())
def test_merge_is_uncut_unroll_crop_and_inverts_partition(hw, window, shift, implementation):
    geometry = cached(hw, window, shift, IMPLEMENTATIONS[implementation])
    x = random_map(hw)
    assert torch.equal(geometry.merge(geometry.partition(x)), x)
    # Arbitrary windows, padding slots included: merge must drop what they hold.
    windows = random_map((pad_roll_cut(x, window, shift).shape[0], window[0] * window[1]),
                         batch=1, seed=1)[0]
    assert torch.equal(geometry.merge(windows),
                       uncut_unroll_crop(windows, hw, window, shift))


@pytest.mark.parametrize('implementation', sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize('hw,window,shift', [((13, 22), (3, 5), (1, 2)),
                                             ((5, 9), (7, 4), (3, 2)),
                                             ((57, 76), (7, 7), (3, 3))])
def test_partition_and_merge_gradients_match_pad_roll_cut(hw, window, shift, implementation):
    geometry = cached(hw, window, shift, IMPLEMENTATIONS[implementation])
    x = random_map(hw).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    out_grad = torch.randn_like(pad_roll_cut(x_ref, window, shift))
    (geometry.partition(x) * out_grad).sum().backward()
    (pad_roll_cut(x_ref, window, shift) * out_grad).sum().backward()
    assert torch.equal(x.grad, x_ref.grad)

    windows = out_grad.detach().clone().requires_grad_()
    windows_ref = out_grad.detach().clone().requires_grad_()
    map_grad = torch.randn_like(x_ref)
    (geometry.merge(windows) * map_grad).sum().backward()
    (uncut_unroll_crop(windows_ref, hw, window, shift) * map_grad).sum().backward()
    assert torch.equal(windows.grad, windows_ref.grad)


def official_masked_pairs(padded_hw, window, shift):
    """(nW, N, N) bool: True where microsoft/Swin-Transformer masks (its -100).

    Its 3x3 labelling of the padded map by slices (0, -w), (-w, -s), (-s, None) per
    axis, label = running count, cut into windows, masked where labels differ.
    Written per axis for non-square windows.
    """
    (hp, wp), (wh, ww), (sh, sw) = padded_hw, window, shift
    labels = torch.zeros(1, hp, wp, 1)
    count = 0
    for rows in (slice(0, -wh), slice(-wh, -sh), slice(-sh, None)):
        for cols in (slice(0, -ww), slice(-ww, -sw), slice(-sw, None)):
            labels[:, rows, cols, :] = count
            count += 1
    windows = pad_roll_cut(labels, window, (0, 0)).squeeze(-1)
    return (windows.unsqueeze(1) - windows.unsqueeze(2)) != 0


@pytest.mark.parametrize('hw,window,shift', [
    case for case in geometry_cases() if any(case.values[2])])
def test_shift_mask_masks_where_the_official_labelling_does(hw, window, shift):
    geometry = cached(hw, window, shift)
    padded = tuple(-(-size // win) * win for size, win in zip(hw, window))
    masked = official_masked_pairs(padded, window, shift)
    assert geometry.mask.shape == masked.shape
    assert torch.equal(geometry.mask == float('-inf'), masked)
    assert (geometry.mask[~masked] == 0).all()


def test_no_shift_means_no_mask():
    assert cached((13, 22), (3, 5), (0, 0)).mask is None


def test_shift_mask_gives_exact_zero_probabilities_not_subnormals():
    """mmdet masks with -100, whose exp (~4e-44) is a subnormal float: on x86 CPUs exp
    and matmul on subnormals run 30-60x slower. Masked pairs must get exact zeros."""
    probs = torch.softmax(cached((14, 14), (7, 7), (3, 3)).mask, dim=-1)
    nonzero = probs[probs != 0]
    assert (probs == 0).any(), 'the shifted windows of a 14x14 map mix regions'
    assert (nonzero >= torch.finfo(probs.dtype).tiny).all()


def torchvision_block(dims, heads, window, shift, seed):
    """torchvision's block with every parameter random: LayerNorm weights near 1, a
    wide bias table (attention far from uniform), the rest with std 0.02."""
    block = SwinTransformerBlock(dims, heads, list(window), list(shift), mlp_ratio=2.0)
    return randomize_(block, seed).eval()


def our_block_from(tv_block, dims, heads, window):
    """Our SwinBlock with torchvision's weights. Same qkv layout (q, k, v, then heads) and
    table rows (row offset * (2w - 1) + column offset); our own relative_position_index."""
    ours = SwinBlock(dims, heads, 2 * dims, window).eval()
    renames = {'attn.': 'attn.w_msa.', 'mlp.0.': 'ffn.layers.0.0.', 'mlp.3.': 'ffn.layers.1.'}
    state = {}
    for key, value in tv_block.state_dict().items():
        if key.endswith('relative_position_index'):
            continue
        for theirs, mine in renames.items():
            if key.startswith(theirs):
                key = mine + key[len(theirs):]
        state[key] = value
    missing, unexpected = ours.load_state_dict(state, strict=False)
    assert list(missing) == ['attn.w_msa.relative_position_index'] and not unexpected
    return ours


# Maps larger than the window along both axes: there torchvision keeps the shift
# (it drops it along an axis the window covers), as mmdet and we always do.
@pytest.mark.parametrize('mode', ['reference', 'auto'])
@pytest.mark.parametrize('shifted', [False, True], ids=['plain', 'shifted'])
@pytest.mark.parametrize('hw,window', [((13, 22), (3, 5)), ((9, 10), (7, 4)),
                                       ((30, 19), (7, 4))])
def test_non_square_window_block_matches_torchvision(hw, window, shifted, mode):
    dims, heads = 32, 4
    shift = half_window(window) if shifted else (0, 0)
    tv_block = torchvision_block(dims, heads, window, shift, seed=hw[0])
    ours = our_block_from(tv_block, dims, heads, window)
    x = torch.randn(2, *hw, dims, generator=torch.Generator().manual_seed(1))
    kernels = select_kernels('cpu', mode)
    with torch.no_grad():
        expected = tv_block(x)
        out = ours(x, cached(hw, window, shift, kernels), kernels)
    assert float((out - expected).abs().max()) <= 1e-5


@pytest.mark.parametrize('hw,window,shift', geometry_cases())
def test_shape_generic_geometry_is_window_geometry(hw, window, shift):
    """The export-time geometry (indices from the shape at run time) against the cached
    tables: same windows (padding zero), same merge, same mask."""
    tables = cached(hw, window, shift)
    generic = ShapeGenericGeometry(hw, window, shift, CPU)
    x = random_map(hw)
    windows = generic.partition(x)
    assert torch.equal(windows, pad_roll_cut(x, window, shift))
    assert torch.equal(windows, tables.partition(x))
    arbitrary = random_map((windows.shape[0], window[0] * window[1]), batch=1, seed=1)[0]
    assert torch.equal(generic.merge(arbitrary), uncut_unroll_crop(arbitrary, hw, window, shift))
    assert (generic.mask is None) == (tables.mask is None)
    if tables.mask is not None:
        assert torch.equal(generic.mask, tables.mask)


def test_a_stage_picks_cached_tables_eagerly_and_the_shape_generic_geometry_in_a_trace():
    """One decision per stage forward: eager runs share cached tables (the same objects
    on the next forward), a traced graph gets indices computed from the traced shape,
    and the result is the same."""
    stage = StageGeometry((7, 7), (3, 3))
    x = random_map((17, 23), channels=4)
    plain, shifted, neighbourhoods = stage(x, REFERENCE_KERNELS)
    assert all(isinstance(g, CachedWindowGeometry) for g in (plain, shifted, neighbourhoods))
    assert stage(x, REFERENCE_KERNELS)[1].tables is shifted.tables
    picked = []

    def windows(x):
        geometries = stage(x, REFERENCE_KERNELS)
        picked.extend(type(g) for g in geometries)
        return tuple(g.partition(x) for g in geometries)

    traced = torch.jit.trace(windows, (x,), check_trace=False)
    assert picked == [ShapeGenericGeometry] * 3
    other = random_map((9, 30), channels=4, seed=2)
    assert all(map(torch.equal, traced(other),
                   (g.partition(other) for g in stage(other, REFERENCE_KERNELS))))
    assert StageGeometry((7, 7), (3, 3), neighbourhoods=False)(x, REFERENCE_KERNELS)[2] is None
