"""SwinBackbone vs mmdet's and mmseg's SwinTransformer: same weights, same outputs and grads."""
import pytest
import torch

from conftest import (
    SMALL, TINY, assert_same_gradient, in_eval, max_abs_diff, mmdet_swin, mmseg_swin,
    randomize_, twin_of
)

TOL = 1e-5


def _forward_backward(model, x):
    x = x.clone().requires_grad_(True)
    outs = model(x)
    # A random weighting of every output, so each element's gradient is checked.
    gen = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in outs)
    loss.backward()
    return [o.detach() for o in outs], x.grad


@pytest.mark.parametrize('size', [(224, 224), (227, 301), (64, 64)])
@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_matches_mmdet_outputs_and_input_gradients(size, mode, images):
    peer = randomize_(mmdet_swin(**TINY))
    ours = twin_of(peer, **TINY)
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


def test_same_math_as_mmdet_in_float64(images):
    """Rounding aside the computation is identical: in float64 the gap vanishes."""
    peer = randomize_(mmdet_swin(**TINY)).double()
    ours = twin_of(peer, **TINY).double()
    x = images(2, 227, 301).double()
    peer_outs, peer_grad = _forward_backward(peer, x)
    our_outs, our_grad = _forward_backward(ours, x)
    assert max_abs_diff(our_outs, peer_outs) <= 1e-10
    assert float((our_grad - peer_grad).abs().max()) <= 1e-10


def test_matches_mmdet_parameter_gradients(images):
    peer = randomize_(mmdet_swin(**SMALL))
    ours = twin_of(peer, **SMALL)
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
