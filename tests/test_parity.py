"""SwinBackbone vs mmdet's and mmseg's SwinTransformer: same weights, same outputs and grads."""
import pytest
import torch

from helpers import (
    SMALL, TINY, assert_same_gradient, in_eval, max_abs_diff, mmdet_swin, mmseg_swin,
    randomize_, twin_of
)
from swin_mm import SwinBackbone

TOL = 1e-5


def _forward_backward(model, x):
    x = x.clone().requires_grad_(True)
    outs = model(x)
    # A random weighting of every output, so each element's gradient is checked.
    gen = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in outs)
    loss.backward()
    return [o.detach() for o in outs], x.grad


# The quick tier (make test) keeps the padded training case; the goldens cover eval of
# both kernel sets there. make test-all runs all.
QUICK = {((227, 301), 'train', 'auto')}


@pytest.mark.parametrize('size,mode,kernels', [
    pytest.param(*case, marks=() if case in QUICK else pytest.mark.slow)
    for case in [*[(size, mode, 'auto') for size in ((224, 224), (227, 301), (64, 64))
                   for mode in ('eval', 'train')],
                 ((227, 301), 'train', 'reference'), ((64, 64), 'eval', 'reference')]])
def test_matches_mmdet_outputs_and_input_gradients(size, mode, kernels, images):
    peer = randomize_(mmdet_swin(**TINY))
    ours = twin_of(peer, kernels=kernels, **TINY)
    peer.train(mode == 'train')
    ours.train(mode == 'train')
    x = images(2, *size)
    peer_outs, peer_grad = _forward_backward(peer, x)
    our_outs, our_grad = _forward_backward(ours, x)
    strides = [4, 8, 16, 32]
    for out, peer_out, stride, channels in zip(our_outs, peer_outs, strides, (96, 192, 384, 768)):
        assert out.shape == peer_out.shape
        assert out.shape == (2, channels, -(-size[0] // stride), -(-size[1] // stride))
    assert max_abs_diff(our_outs, peer_outs) <= TOL
    assert_same_gradient(our_grad, peer_grad)


@pytest.mark.slow
@pytest.mark.parametrize('kernels', ['auto', 'reference'])
def test_same_math_as_mmdet_in_float64(kernels, images):
    """Rounding aside the computation is identical: in float64 the gap vanishes."""
    peer = randomize_(mmdet_swin(**TINY)).double()
    ours = twin_of(peer, kernels=kernels, **TINY).double()
    x = images(2, 227, 301).double()
    peer_outs, peer_grad = _forward_backward(peer, x)
    our_outs, our_grad = _forward_backward(ours, x)
    assert max_abs_diff(our_outs, peer_outs) <= 1e-10
    assert float((our_grad - peer_grad).abs().max()) <= 1e-10


@pytest.mark.parametrize('kernels', ['auto', 'reference'])
def test_matches_mmdet_parameter_gradients(kernels, images):
    peer = randomize_(mmdet_swin(**SMALL))
    ours = twin_of(peer, kernels=kernels, **SMALL)
    x = images(2, 61, 45)
    _forward_backward(peer, x)
    _forward_backward(ours, x)
    peer_params = dict(peer.named_parameters())
    for name, param in ours.named_parameters():
        assert_same_gradient(param.grad, peer_params[name].grad)


@pytest.mark.parametrize('window_size,size', [(12, (384, 384)), (12, (200, 130)), (5, (97, 64))])
def test_matches_mmdet_for_other_window_sizes(window_size, size, images):
    peer = in_eval(randomize_(mmdet_swin(window_size=window_size, **SMALL)))
    ours = twin_of(peer, window_size=window_size, **SMALL).eval()
    x = images(1, *size)
    with torch.no_grad():
        assert max_abs_diff(ours(x), peer(x)) <= TOL


def test_matches_mmseg(images):
    peer = in_eval(randomize_(mmseg_swin(mlp_ratio=4, out_indices=(1, 3), **TINY)))
    ours = twin_of(peer, out_indices=(1, 3), **TINY).eval()
    x = images(2, 227, 301)
    with torch.no_grad():
        peer_outs, our_outs = peer(x), ours(x)
    assert len(our_outs) == 2
    assert max_abs_diff(our_outs, peer_outs) <= TOL


def test_matches_mmdet_with_abs_pos_embed_at_pretrain_size(images):
    # mmdet 3.x only works at exactly the pretrain size; there the two must agree.
    peer = in_eval(randomize_(mmdet_swin(use_abs_pos_embed=True, pretrain_img_size=96, **SMALL)))
    ours = twin_of(peer, use_abs_pos_embed=True, pretrain_img_size=96, **SMALL).eval()
    x = images(2, 96, 96)
    with torch.no_grad():
        assert max_abs_diff(ours(x), peer(x)) <= TOL


@pytest.mark.parametrize('use_abs_pos_embed', [False, True])
def test_three_number_pretrain_size_is_refused_like_the_peers(use_abs_pos_embed):
    """Both peers reject it (an assertion), also where no absolute embedding uses it."""
    for peer in (mmdet_swin, mmseg_swin):
        with pytest.raises(AssertionError):
            peer(pretrain_img_size=(224, 224, 224), use_abs_pos_embed=use_abs_pos_embed)
    with pytest.raises(ValueError, match='pretrain_img_size must be an int or a pair'):
        SwinBackbone(pretrain_img_size=(224, 224, 224), use_abs_pos_embed=use_abs_pos_embed)


def test_layer_init_cfg_still_draws_the_position_tables():
    """A Kaiming init_cfg for the convolution leaves the bare tables and the absolute
    embedding to init_weights: trunc_normal(std 0.02) as the official code, not zeros."""
    model = SwinBackbone(**SMALL, use_abs_pos_embed=True, pretrain_img_size=64,
                         init_cfg=dict(type='Kaiming', layer='Conv2d'))
    model.init_weights()
    drawn = [p for name, p in model.named_parameters()
             if name.endswith('relative_position_bias_table') or name == 'absolute_pos_embed']
    assert len(drawn) == sum(SMALL['depths']) + 1
    values = torch.cat([p.detach().flatten() for p in drawn])
    assert abs(float(values.mean())) <= 1e-3 and 0.019 <= float(values.std()) <= 0.021
