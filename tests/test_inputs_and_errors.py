"""Any input size, any window, and clear errors for bad input or arguments."""
import pytest
import torch

from helpers import SMALL, in_eval, max_abs_diff, mmdet_swin, randomize_, twin_of
from swin_mm import SwinBackbone


@pytest.mark.parametrize('size', [(1, 1), (1, 37), (5, 3), (31, 33), (129, 17)])
def test_any_input_size_matches_mmdet(size, images):
    peer = in_eval(randomize_(mmdet_swin(**SMALL)))
    ours = twin_of(peer, **SMALL).eval()
    x = images(1, *size)
    with torch.no_grad():
        outs = ours(x)
        assert max_abs_diff(outs, peer(x)) <= 1e-5
    for out, stride in zip(outs, (4, 8, 16, 32)):
        assert out.shape[2:] == (-(-size[0] // stride), -(-size[1] // stride))


def test_non_square_window(images):
    model = SwinBackbone(window_size=(4, 9), **SMALL).eval()
    outs = model(images(1, 70, 50))
    assert [tuple(o.shape[1:]) for o in outs] == [(32, 18, 13), (64, 9, 7), (128, 5, 4),
                                                 (256, 3, 2)]
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize('shape,dtype,message', [
    ((3, 64, 64), torch.float32, '4D'),
    ((1, 1, 64, 64), torch.float32, '3 input channels'),
    ((1, 3, 0, 64), torch.float32, 'non-empty'),
    ((1, 3, 64, 64), torch.uint8, r'floating-point images .*got torch.uint8; convert with'),
])
def test_bad_input_raises_value_error(shape, dtype, message):
    with pytest.raises(ValueError, match=message):
        SwinBackbone(**SMALL)(torch.zeros(shape, dtype=dtype))


@pytest.mark.parametrize('kwargs,message', [
    (dict(depths=(2, 2), num_heads=(1, 2, 4)), 'equal length'),
    (dict(embed_dims=30, num_heads=(4, 8, 16, 32)), 'not divisible'),
    (dict(out_indices=(0, 4)), 'out_indices'),
    (dict(out_indices=(-1,)), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
    (dict(window_size=0), 'window_size'),
    (dict(strides=(4, 2, 2)), 'strides'),
    (dict(strides=(4, 2, 1, 2)), 'stride 2'),
    (dict(patch_size=2), 'patch_size'),
])
def test_inconsistent_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SwinBackbone(**{**SMALL, **kwargs})


def test_pretrained_and_init_cfg_together_are_refused():
    with pytest.raises(ValueError, match='init_cfg and pretrained'):
        SwinBackbone(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth'))


@pytest.mark.slow
def test_window_geometry_cache_stays_bounded_under_multi_scale_input(images):
    from swin_mm.geometry import GEOMETRY_CACHE_SIZE
    peer = in_eval(randomize_(mmdet_swin(**SMALL)))
    ours = in_eval(twin_of(peer, **SMALL))
    first = images(1, 64, 96)
    with torch.no_grad():
        for size in range(64, 64 + 4 * (GEOMETRY_CACHE_SIZE + 4), 4):
            ours(images(1, size, 96))
        assert all(len(s.geometry._tables) <= GEOMETRY_CACHE_SIZE for s in ours.stages)
        assert max_abs_diff(ours(first), peer(first)) <= 1e-5
