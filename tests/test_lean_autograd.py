"""The memory-lean autograd functions: exact gradients, the reference kernels, saved memory."""
import pytest
import torch

from helpers import (
    SMALL, TINY, assert_same_gradient, max_abs_diff, mmdet_swin, randomize_, twin_of
)
from swin_mm.kernels.lean_attention import _Cosine, _WindowAttention
from swin_mm.kernels.cosine_attention import reference_cosine_window_attention
from swin_mm.kernels.custom_functions import DEFAULT_SCRATCH_BYTES
from swin_mm.kernels.mlp import _GeluMlp
from swin_mm.kernels.probes import running_torch


@pytest.mark.skipif(torch.float64 not in running_torch().cpu_flash_dtypes,
                    reason='the probe found no usable float64 CPU flash kernel')
@pytest.mark.parametrize('scratch_bytes', [DEFAULT_SCRATCH_BYTES, 1])
@pytest.mark.parametrize('images_,groups,heads', [(2, 4, 3), (3, 1, 2)])
def test_window_attention_gradients_are_exact(images_, groups, heads, scratch_bytes):
    """groups > 1: one mask per window (shifted blocks); 1: a mask shared by all windows.
    A 1-byte scratch budget makes every window its own backward chunk. gradcheck's fast
    mode compares the analytical and numerical Jacobians along random directions (one
    product each instead of ~1000 columns): a wrong gradient still fails it."""
    gen = torch.Generator().manual_seed(0)
    tokens, channels = 5, 4 * heads

    def rand(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)

    windows = rand(images_ * max(groups, 3), tokens, channels)
    inputs = (windows, rand(3 * channels, channels), rand(3 * channels),
              rand(groups, heads, tokens, tokens))
    assert torch.autograd.gradcheck(
        lambda *args: _WindowAttention.apply(*args, heads, 0.3, scratch_bytes), inputs,
        fast_mode=True)


@pytest.mark.skipif(torch.float64 not in running_torch().cpu_flash_dtypes,
                    reason='the probe found no usable float64 CPU flash kernel')
@pytest.mark.parametrize('scratch_bytes', [DEFAULT_SCRATCH_BYTES, 1])
@pytest.mark.parametrize('images_,groups,heads', [(2, 4, 3), (3, 1, 2)])
def test_cosine_window_attention_gradients_are_exact(images_, groups, heads, scratch_bytes):
    """Swin V2's form: q and k normalised per head, q times a per-head logit scale
    tensor, whose gradient is checked too."""
    gen = torch.Generator().manual_seed(0)
    tokens, channels = 5, 4 * heads

    def rand(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)

    inputs = (rand(images_ * max(groups, 3), tokens, channels), rand(3 * channels, channels),
              rand(3 * channels), rand(groups, heads, tokens, tokens),
              (1 + torch.rand(heads, 1, 1, generator=gen, dtype=torch.float64) * 9)
              .requires_grad_())
    assert torch.autograd.gradcheck(
        lambda w, wt, b, m, s: _WindowAttention.apply(w, wt, b, m, heads, s, scratch_bytes,
                                                      _Cosine),
        inputs, fast_mode=True)


@pytest.mark.skipif(torch.float64 not in running_torch().cpu_flash_dtypes,
                    reason='the probe found no usable float64 CPU flash kernel')
def test_cosine_window_attention_matches_the_reference_where_a_norm_is_zero():
    """Head 0's q is all zeros (its weight rows and bias are): F.normalize divides by
    its eps there, and the gradients must be autograd's through the reference."""
    gen = torch.Generator().manual_seed(1)
    heads, tokens, channels = 2, 5, 8
    weight = torch.randn(3 * channels, channels, generator=gen, dtype=torch.float64)
    bias = torch.randn(3 * channels, generator=gen, dtype=torch.float64)
    weight[:4], bias[:4] = 0, 0
    inputs = [torch.randn(6, tokens, channels, generator=gen, dtype=torch.float64), weight,
              bias, torch.randn(3, heads, tokens, tokens, generator=gen, dtype=torch.float64),
              torch.full((heads, 1, 1), 3.0, dtype=torch.float64)]
    results = []
    for attend in (lambda *a: _WindowAttention.apply(*a[:4], heads, a[4], 1 << 20, _Cosine),
                   lambda *a: reference_cosine_window_attention(*a[:3], a[4], a[3], heads)):
        leaves = [t.clone().requires_grad_() for t in inputs]
        out = attend(*leaves)
        out.backward(torch.cos(torch.arange(out.numel(), dtype=torch.float64)).view_as(out))
        results.append([out.detach()] + [t.grad for t in leaves])
    for ours, reference in zip(*results):  # gradients of order 1/eps: relative
        assert float((ours - reference).abs().max()) <= 1e-10 * max(1., reference.abs().max())


@pytest.mark.parametrize('leading', [(7,), (2, 4)])
@pytest.mark.parametrize('scratch_bytes', [DEFAULT_SCRATCH_BYTES, 100])
def test_gelu_mlp_gradients_are_exact(scratch_bytes, leading):
    """Rows (7, C) and a map (2, 4, C); a 100-byte scratch makes 2-row chunks."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(*leading, 3), (12, 3), (12,), (3, 12), (3,)]
    inputs = [torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=True)
              for s in shapes]
    assert torch.autograd.gradcheck(lambda *args: _GeluMlp.apply(*args, scratch_bytes), inputs)


def _train_outputs_and_grads(model, x):
    model.train()
    x = x.clone().requires_grad_(True)
    outs = model(x)
    sum((o * o.detach().sign()).sum() for o in outs).backward()
    params = {name: p.grad for name, p in model.named_parameters()}
    return [o.detach() for o in outs], x.grad, params


def _assert_trains_like_mmdet(kwargs, size, images, **ours_only):
    """Same weights and input: outputs, input and parameter gradients match mmdet's."""
    peer = randomize_(mmdet_swin(**kwargs))
    ours = twin_of(peer, **kwargs, **ours_only)
    x = images(2, *size)
    peer_outs, peer_grad, peer_params = _train_outputs_and_grads(peer, x)
    our_outs, our_grad, our_params = _train_outputs_and_grads(ours, x)
    assert max_abs_diff(our_outs, peer_outs) <= 1e-5
    assert_same_gradient(our_grad, peer_grad)
    for name, grad in our_params.items():
        assert_same_gradient(grad, peer_params[name])


def test_reference_kernels_train_like_mmdet(images):
    """kernels='reference' (plain public ops everywhere) is exact too."""
    _assert_trains_like_mmdet(SMALL, (61, 83), images, kernels='reference')


def test_dropout_paths_match_mmdet(images):
    """Active dropout leaves the lean functions for the stock ops; rate 1 makes it
    deterministic (every attention probability and MLP activation dropped)."""
    _assert_trains_like_mmdet(dict(SMALL, attn_drop_rate=1.0, drop_rate=1.0), (45, 61), images)


def test_backward_twice_with_retained_graph_gives_the_same_gradients(images):
    """Backward reuses scratch buffers; it must never write into a saved tensor."""
    model = randomize_(twin_of(mmdet_swin(**SMALL), **SMALL)).train()
    loss = sum(o.square().mean() for o in model(images(1, 64, 64)))
    first = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
    second = torch.autograd.grad(loss, list(model.parameters()))
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.parametrize('scratch_bytes', [DEFAULT_SCRATCH_BYTES, 1000])
def test_inference_path_matches_mmdet(images, scratch_bytes):
    """no_grad runs outside autograd, the MLP in row chunks (1000 bytes: a few rows)."""
    peer = randomize_(mmdet_swin(**SMALL))
    ours = twin_of(peer, scratch_bytes=scratch_bytes, **SMALL).eval()
    peer.eval()
    x = images(1, 83, 61)
    with torch.no_grad():
        assert max_abs_diff(ours(x), peer(x)) <= 1e-5


def test_bfloat16_autocast_training_gradients_are_close_to_mmdet_float32(images):
    peer = randomize_(mmdet_swin(**SMALL))
    ours = twin_of(peer, **SMALL)
    x = images(2, 64, 64)
    grads = []
    for model, autocast in ((peer, False), (ours, True)):
        model.train()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            loss = sum(o.float().square().mean() for o in model(x))
        loss.backward()
        named = dict(model.named_parameters())
        grads.append(torch.cat([named[name].grad.flatten() for name in sorted(named)]))
    full, mixed = grads
    assert torch.isfinite(mixed).all()
    assert float(torch.nn.functional.cosine_similarity(full, mixed, dim=0)) > 0.99


def _saved_bytes(model, x) -> int:
    """Bytes autograd keeps for backward, parameters excluded, each storage once."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        ptr = tensor.untyped_storage().data_ptr()
        if ptr not in params:
            storages[ptr] = tensor.untyped_storage().nbytes()
        return tensor

    model.train()  # the peers' train() returns None
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(x)
    return sum(storages.values())


def test_training_keeps_far_fewer_activations_than_mmdet(images):
    """The structural reason for the benchmark's training-memory ratio, as a regression
    test: measured 0.76 of mmdet's saved activations at 2x128x128 and 0.74 at 2x512x512 (Swin-T)."""
    peer = mmdet_swin(**TINY)
    ours = twin_of(peer, **TINY)
    x = images(2, 128, 128)
    assert _saved_bytes(ours, x) <= 0.78 * _saved_bytes(peer, x)


def test_v2_training_keeps_far_fewer_activations_than_mmpretrain():
    """SwinV2-T, same weights: measured 0.60 of mmpretrain's saved activations at
    2x128x128 and 0.58 at 2x256x256 (the benchmark's peak memory: 0.53 at 2x512x512)."""
    from swin_mm_dev.benchmark.models_v2 import build_v2
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    models = build_v2(('swin_mm', 'mmpretrain'))
    assert _saved_bytes(models['swin_mm'], x) <= 0.65 * _saved_bytes(models['mmpretrain'], x)
