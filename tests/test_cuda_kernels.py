"""The kernels on a CUDA GPU, in float32 and under bfloat16/float16 autocast.

Every fast path and custom autograd function that can run on CUDA (SDPA window and
global attention, the lean GELU MLP, the lean partition/merge) against its public-op
reference and against mmdet's module, outputs and gradients; then the whole backbone
against mmdet's SwinTransformer. Skipped without a GPU. Until these have passed on one,
CUDA tensors take only public-op paths (see swin_mm.kernels.selection); the lean window
attention is CPU-only (its forward is PyTorch's CPU flash kernel).
"""
import functools

import pytest
import torch

from helpers import SMALL, max_abs_diff, mmdet_swin, pad_roll_cut, randomize_, twin_of
from swin_mm.geometry import WindowTables
from swin_mm.kernels import attention, mlp, partition, select_kernels
from swin_mm.kernels.probes import running_torch
from swin_mm.models.swin_block import SwinFFN, WindowAttention

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')]

DEVICE = 'cuda'
# None: float32 without autocast; else the autocast dtype.
PRECISIONS = [None, torch.bfloat16, torch.float16]
UNIT_ROUNDOFF = {torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11}


def _randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(DEVICE)


def _outputs_and_grads(function, inputs, params, precision):
    """Output of function(*inputs) under `precision`, and the gradients of a random
    weighting of it with respect to inputs and params."""
    inputs = [t.detach().requires_grad_(True) for t in inputs]
    for p in params:
        p.grad = None
    with torch.autocast(DEVICE, dtype=precision or torch.float32, enabled=precision is not None):
        out = function(*inputs)
    loss = (out.float() * _randn(*out.shape, seed=1)).sum()
    grads = torch.autograd.grad(loss, inputs + list(params))
    return [out.float()] + [g.float() for g in grads]


def _error(result, exact):
    """Largest deviation, relative to the exact tensor's largest magnitude."""
    assert result.shape == exact.shape and torch.isfinite(result).all()
    result, exact = result.detach(), exact.detach()
    return float((result - exact).abs().max()) / max(float(exact.abs().max()), 1e-12)


def _assert_as_accurate_as_peer(results, peer, exact, precision):
    """float32: each of ours and the peer within 1e-5 of the exact (our reference's
    float32) result. Under autocast: each of ours at most twice as far from it as the
    peer under the same autocast, plus one unit roundoff (rounding differs, accuracy
    must not)."""
    for ours in results:
        for a, p, e in zip(ours, peer, exact):
            if precision is None:
                assert max(_error(a, e), _error(p, e)) <= 1e-5
            else:
                assert _error(a, e) <= 2 * _error(p, e) + UNIT_ROUNDOFF[precision]


def _mmdet_window_msa(heads, window):
    from mmdet.models.backbones.swin import WindowMSA
    return randomize_(WindowMSA(8 * heads, heads, window)).to(DEVICE)


@pytest.mark.parametrize('precision', PRECISIONS)
@pytest.mark.parametrize('shifted', [False, True])
def test_window_attention_matches_reference_and_mmdet(shifted, precision):
    """Our WindowAttention through the CUDA kernels and through the reference, against
    mmdet's WindowMSA with the same weights (its shift mask uses -100 where ours -inf)."""
    heads, window = 4, (7, 7)
    peer = _mmdet_window_msa(heads, window)
    ours = WindowAttention(8 * heads, heads, window).to(DEVICE)
    ours.load_state_dict(peer.state_dict())
    shift = (3, 3) if shifted else (0, 0)
    geometry = WindowTables.build((17, 23), window, shift, torch.device(DEVICE))
    mask = geometry.mask
    peer_mask = None if mask is None else mask.clamp(min=-100)
    windows = _randn(2 * geometry.gather.numel() // 49, 49, 8 * heads)
    def run(kernels, run_precision):
        return _outputs_and_grads(lambda w: ours(w, mask, kernels), [windows],
                                  list(ours.parameters()), run_precision)

    exact = run(select_kernels(DEVICE, 'reference'), None)
    results = [run(select_kernels(DEVICE, mode), precision) for mode in ('auto', 'reference')]
    peer_result = _outputs_and_grads(lambda w: peer(w, mask=peer_mask), [windows],
                                     list(peer.parameters()), precision)
    _assert_as_accurate_as_peer(results, peer_result, exact, precision)


@pytest.mark.parametrize('precision', PRECISIONS)
def test_global_attention_core_matches_reference(precision):
    q, k, v = (_randn(2, 4, 77, 16, seed=seed) for seed in range(3))

    def run(core, run_precision):
        return _outputs_and_grads(lambda *t: core(*t, None, None), [q, k, v], [], run_precision)

    reference = run(attention.reference_attention, precision)
    sdpa = functools.partial(attention.sdpa_attention, takes_scale=running_torch().sdpa_scale)
    _assert_as_accurate_as_peer([run(sdpa, precision)], reference,
                                run(attention.reference_attention, None), precision)


def _ffn_pair():
    """mmcv's FFN (the MLP of mmdet's Swin blocks) and our SwinFFN with its weights."""
    from mmcv.cnn.bricks.transformer import FFN
    peer = randomize_(FFN(32, 128, act_cfg=dict(type='GELU'), add_identity=False)).to(DEVICE)
    ours = SwinFFN(32, 128, dict(type='GELU')).to(DEVICE)
    ours.load_state_dict(peer.state_dict())
    return peer, ours, ours.layers[0][0], ours.layers[1]


@pytest.mark.parametrize('precision', PRECISIONS)
def test_lean_mlp_trains_like_reference_and_mmcv_ffn(precision):
    """_GeluMlp: output and gradients of input and weights."""
    peer, ours, fc1, fc2 = _ffn_pair()
    x, params = _randn(2, 9, 11, 32), list(ours.parameters())

    def run(function, run_precision):
        return _outputs_and_grads(lambda t: function(t, fc1, fc2), [x], params, run_precision)

    lean = functools.partial(mlp.lean_gelu_mlp, scratch_bytes=1 << 23)
    reference = lambda t, *_: mlp.reference_mlp(t, ours.layers)  # noqa: E731
    results = [run(lean, precision), run(reference, precision)]
    peer_result = _outputs_and_grads(peer, [x], list(peer.parameters()), precision)
    _assert_as_accurate_as_peer(results, peer_result, run(reference, None), precision)


@pytest.mark.parametrize('precision', PRECISIONS)
def test_lean_mlp_inference_matches_reference_and_mmcv_ffn(precision):
    """The chunked no-autograd function (one chunk on a GPU)."""
    peer, ours, fc1, fc2 = _ffn_pair()
    x = _randn(2, 9, 11, 32)
    with torch.no_grad():
        exact = mlp.reference_mlp(x, ours.layers)
        with torch.autocast(DEVICE, dtype=precision or torch.float32,
                            enabled=precision is not None):
            lean = mlp.lean_gelu_mlp(x, fc1, fc2, scratch_bytes=1 << 23).float()
            reference = mlp.reference_mlp(x, ours.layers).float()
            peer_result = peer(x).float()
    _assert_as_accurate_as_peer([[lean], [reference]], [peer_result], [exact], precision)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize('shift', [(0, 0), (3, 3)])
def test_partition_and_merge_match_reference_and_mmdet_layout(shift, dtype):
    """Index copies are exact in every dtype: equality, values and gradients; merge
    inverts partition and crops the padding."""
    window = (7, 7)
    tables = WindowTables.build((17, 23), window, shift, torch.device(DEVICE))
    x = _randn(2, 17, 23, 16).to(dtype).requires_grad_(True)
    expected = pad_roll_cut(x, window, shift)
    weights = _randn(*expected.shape, seed=1).to(dtype)
    expected_grad, = torch.autograd.grad((expected * weights).sum(), x)
    for part, merge in ((partition.lean_partition, partition.lean_merge),
                        (partition.reference_partition, partition.reference_merge)):
        windows = part(x, tables)
        assert torch.equal(windows, expected)
        assert torch.equal(torch.autograd.grad((windows * weights).sum(), x)[0], expected_grad)
        merged = merge(windows, tables)
        assert torch.equal(merged, x)
        merge_grad, = torch.autograd.grad((merged * x).sum(), windows)
        assert torch.equal(merge_grad, part(x.detach(), tables))


def _model_outputs_and_grads(model, x, precision):
    model.train()
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    with torch.autocast(DEVICE, dtype=precision or torch.float32, enabled=precision is not None):
        outs = model(x)
    loss = sum((o.float() * _randn(*o.shape, seed=i)).sum() for i, o in enumerate(outs))
    loss.backward()
    grads = torch.cat([p.grad.flatten() for _, p in sorted(model.named_parameters())])
    return [o.detach().float() for o in outs], x.grad, grads


@pytest.mark.parametrize('precision', PRECISIONS)
@pytest.mark.parametrize('kernels', ['auto', 'reference'])
def test_backbone_trains_like_mmdet(kernels, precision, images):
    """The whole backbone on CUDA against mmdet's SwinTransformer with the same weights:
    float32 within 1e-5 of mmdet's; under autocast as close to mmdet's float32 result
    as mmdet under the same autocast (as the kernel tests above), with gradients
    pointing the same way (cosine > 0.99, as the CPU bfloat16 test)."""
    peer = randomize_(mmdet_swin(**SMALL)).to(DEVICE)
    ours = twin_of(peer, kernels=kernels, **SMALL).to(DEVICE)
    x = images(2, 61, 83).to(DEVICE)
    exact = _model_outputs_and_grads(peer, x, None)
    result = _model_outputs_and_grads(ours, x, precision)
    if precision is None:
        assert max_abs_diff(result[0], exact[0]) <= 1e-5
        for ours_grad, peer_grad in zip(result[1:], exact[1:]):
            assert float((ours_grad - peer_grad).abs().max()) <= 1e-5 * max(
                1.0, float(peer_grad.abs().max()))
        return
    peer_result = _model_outputs_and_grads(peer, x, precision)
    _assert_as_accurate_as_peer([result[0]], peer_result[0], exact[0], precision)
    assert torch.isfinite(result[2]).all()
    assert float(torch.nn.functional.cosine_similarity(result[2], exact[2], dim=0)) > 0.99
