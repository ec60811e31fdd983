"""Known answers for the window geometry core (swin_mm.models.windows.WindowGeometry).

- partition and merge, in both implementations, against pad -> roll -> cut written
  here in plain torch ops, forward and backward;
- the shift mask against the official 3x3 slice labelling (microsoft/Swin-Transformer,
  ``SwinTransformerBlock.__init__``), compared where masked: ours is -inf, theirs -100;
- non-square windows by value against torchvision's ``shifted_window_attention``
  inside its ``SwinTransformerBlock``;
- the export-time ShapeGenericGeometry against all of the above.
"""
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.swin_transformer import SwinTransformerBlock

from swin_mm.kernels import select_kernels
from swin_mm.kernels.partition import lean_merge, lean_partition
from swin_mm.models.layers import SwinBlock
from swin_mm.models.windows import ShapeGenericGeometry, WindowGeometry

CPU = torch.device('cpu')
REFERENCE = select_kernels('cpu', 'reference')
# The lean partition/merge set explicitly: 'auto' picks them on the CPU today, but this
# file tests the implementation, not the selection.
IMPLEMENTATIONS = {
    'reference': REFERENCE,
    'lean': dataclasses.replace(REFERENCE, partition=lean_partition, merge=lean_merge),
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


def pad_roll_cut(x, window, shift):
    """(B, H, W, C) -> (B * nW, h * w, C): pad bottom/right with zeros, roll by -shift,
    cut into windows row by row (the peers' and the official code's three steps)."""
    (b, h, w, c), (wh, ww) = x.shape, window
    x = F.pad(x, (0, 0, 0, (-w) % ww, 0, (-h) % wh))
    x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    hp, wp = x.shape[1:3]
    x = x.view(b, hp // wh, wh, wp // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, c)


def uncut_unroll_crop(windows, hw, window, shift):
    """Inverse of :func:`pad_roll_cut`: windows back to the map, roll by +shift, crop."""
    (h, w), (wh, ww), c = hw, window, windows.shape[-1]
    hp, wp = -(-h // wh) * wh, -(-w // ww) * ww
    x = windows.view(-1, hp // wh, wp // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    x = torch.roll(x.reshape(-1, hp, wp, c), shifts=shift, dims=(1, 2))
    return x[:, :h, :w]


def random_map(hw, channels=3, batch=2, seed=0):
    """No exact zeros, so a zero in a partition can only be padding."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, *hw, channels, generator=gen) + 1.0


@pytest.mark.parametrize('implementation', sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize('hw,window,shift', geometry_cases())
def test_partition_is_pad_roll_cut(hw, window, shift, implementation):
    kernels = IMPLEMENTATIONS[implementation]
    geometry = WindowGeometry.build(hw, window, shift, CPU)
    x = random_map(hw)
    windows = geometry.partition(x, kernels)
    expected = pad_roll_cut(x, window, shift)
    assert torch.equal(windows, expected)
    padding = pad_roll_cut(torch.ones_like(x), window, shift) == 0
    slots_per_image = expected.shape[0] // x.shape[0] * window[0] * window[1]
    assert int(padding.sum()) == x.shape[0] * x.shape[-1] * (slots_per_image - hw[0] * hw[1])
    assert (windows[padding] == 0).all() and (windows[~padding] != 0).all()


@pytest.mark.parametrize('implementation', sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize('hw,window,shift', geometry_cases())
def test_merge_is_uncut_unroll_crop_and_inverts_partition(hw, window, shift, implementation):
    kernels = IMPLEMENTATIONS[implementation]
    geometry = WindowGeometry.build(hw, window, shift, CPU)
    x = random_map(hw)
    assert torch.equal(geometry.merge(geometry.partition(x, kernels), kernels), x)
    # Arbitrary windows, padding slots included: merge must drop what they hold.
    windows = random_map((pad_roll_cut(x, window, shift).shape[0], window[0] * window[1]),
                         batch=1, seed=1)[0]
    assert torch.equal(geometry.merge(windows, kernels),
                       uncut_unroll_crop(windows, hw, window, shift))


@pytest.mark.parametrize('implementation', sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize('hw,window,shift', [((13, 22), (3, 5), (1, 2)),
                                             ((5, 9), (7, 4), (3, 2)),
                                             ((57, 76), (7, 7), (3, 3))])
def test_partition_and_merge_gradients_match_pad_roll_cut(hw, window, shift, implementation):
    kernels = IMPLEMENTATIONS[implementation]
    geometry = WindowGeometry.build(hw, window, shift, CPU)
    x = random_map(hw).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    out_grad = torch.randn_like(pad_roll_cut(x_ref, window, shift))
    (geometry.partition(x, kernels) * out_grad).sum().backward()
    (pad_roll_cut(x_ref, window, shift) * out_grad).sum().backward()
    assert torch.equal(x.grad, x_ref.grad)

    windows = out_grad.detach().clone().requires_grad_()
    windows_ref = out_grad.detach().clone().requires_grad_()
    map_grad = torch.randn_like(x_ref)
    (geometry.merge(windows, kernels) * map_grad).sum().backward()
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
    geometry = WindowGeometry.build(hw, window, shift, CPU)
    padded = tuple(-(-size // win) * win for size, win in zip(hw, window))
    masked = official_masked_pairs(padded, window, shift)
    assert geometry.mask.shape == masked.shape
    assert torch.equal(geometry.mask == float('-inf'), masked)
    assert (geometry.mask[~masked] == 0).all()


def test_no_shift_means_no_mask():
    assert WindowGeometry.build((13, 22), (3, 5), (0, 0), CPU).mask is None


def torchvision_block(dims, heads, window, shift, seed):
    """torchvision's block with every parameter random: LayerNorm weights near 1, a
    wide bias table (attention far from uniform), the rest with std 0.02."""
    block = SwinTransformerBlock(dims, heads, list(window), list(shift), mlp_ratio=2.0)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in block.named_parameters():
            scale = 0.5 if 'relative_position_bias_table' in name else 0.02
            base = 1.0 if name.startswith('norm') and name.endswith('weight') else 0.0
            param.copy_(base + scale * torch.randn(param.shape, generator=gen))
    return block.eval()


def our_block_from(tv_block, dims, heads, window, shifted):
    """Our SwinBlock with torchvision's weights. Same qkv layout (q, k, v, then heads) and
    table rows (row offset * (2w - 1) + column offset); our own relative_position_index."""
    ours = SwinBlock(dims, heads, 2 * dims, window, shifted).eval()
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
    ours = our_block_from(tv_block, dims, heads, window, shifted)
    x = torch.randn(2, *hw, dims, generator=torch.Generator().manual_seed(1))
    geometry = WindowGeometry.build(hw, window, shift, CPU)
    with torch.no_grad():
        expected = tv_block(x)
        out = ours(x, geometry, select_kernels('cpu', mode))
    assert float((out - expected).abs().max()) <= 1e-5


@pytest.mark.parametrize('hw,window,shift', geometry_cases())
def test_shape_generic_geometry_is_window_geometry(hw, window, shift):
    """The export-time geometry (indices from the shape at run time) against the cached
    tables: same windows (padding zero), same merge, same mask."""
    cached = WindowGeometry.build(hw, window, shift, CPU)
    generic = ShapeGenericGeometry(hw, window, shift, CPU)
    x = random_map(hw)
    windows = generic.partition(x)
    assert torch.equal(windows, pad_roll_cut(x, window, shift))
    assert torch.equal(windows, cached.partition(x, REFERENCE))
    arbitrary = random_map((windows.shape[0], window[0] * window[1]), batch=1, seed=1)[0]
    assert torch.equal(generic.merge(arbitrary), uncut_unroll_crop(arbitrary, hw, window, shift))
    assert (generic.mask is None) == (cached.mask is None)
    if cached.mask is not None:
        assert torch.equal(generic.mask, cached.mask)
