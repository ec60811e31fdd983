"""The kernel layer: each fast path against its public-op reference on the model's own
tensors, the choice of path, and the torch-version shims."""
import functools

import pytest
import torch

from helpers import CPU_FLASH, randomize_
from swin_mm import SwinBackbone, compat
from swin_mm.geometry import WindowTables
from swin_mm.kernels import attention, lean_attention, mlp, select_kernels
from swin_mm.kernels.probes import Capabilities, running_torch
from swin_mm.kernels.selection import build_kernels, cpu_mlp, cpu_window_attention
from swin_mm.models.swin_block import SwinFFN, WindowAttention

LEAN_ATTENTION = dict(scratch_bytes=1 << 23)
SDPA_WINDOW_ATTENTION = functools.partial(attention.sdpa_window_attention,
                                          takes_scale=running_torch().sdpa_scale)


def _model_attention(heads, shifted, dtype, window=(7, 7), hw=(17, 23)):
    """A WindowAttention with random weights (a spread-out bias table, so attention is
    far from uniform), and the window tables of a (hw) map: multi-head, padded, shifted
    or not."""
    module = randomize_(WindowAttention(8 * heads, heads, window), seed=heads,
                        weight_std=0.2, table_std=1.0).to(dtype)
    shift = tuple(w // 2 for w in window) if shifted else (0, 0)
    return module, WindowTables.build(hw, window, shift, torch.device('cpu'))


def _attention_result(function, module, geometry, windows, **kwargs):
    """Output and the gradients of windows, qkv weight/bias and the bias table."""
    module.zero_grad()
    windows = windows.detach().requires_grad_(True)
    mask = module.attn_mask(None if geometry.mask is None else geometry.mask.to(windows.dtype))
    out = function(windows, module.qkv, mask, module.num_heads, module.scale, **kwargs)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    (out * weights).sum().backward()
    return [out.detach(), windows.grad, module.qkv.weight.grad, module.qkv.bias.grad,
            module.relative_position_bias_table.grad]


def _max_relative_diff(ours, reference):
    return max(float((a - b).abs().max()) / max(1.0, float(b.abs().max()))
               for a, b in zip(ours, reference))


@pytest.mark.parametrize('shifted', [False, True])
@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_model_mask_is_contiguous_and_fast_attention_matches_reference(shifted, dtype, tol):
    """The mask exactly as the model builds it (4 heads, per-window shift mask with -inf).
    torch 2.3-2.7's CPU flash kernel returned NaN or errors of 0.5 on the strided mask
    the model used to build, while a one-head stage hid it: this comparison is the check."""
    module, geometry = _model_attention(heads=4, shifted=shifted, dtype=dtype)
    mask = module.attn_mask(geometry.mask)
    assert mask.is_contiguous() and mask.shape[1] == 4
    assert (geometry.mask is not None) == shifted
    x = torch.randn(2, *geometry.hw, 32, generator=torch.Generator().manual_seed(0), dtype=dtype)
    windows = select_kernels('cpu', 'reference').partition(x, geometry)
    reference = _attention_result(attention.reference_window_attention, module, geometry,
                                  windows)
    fast = [_attention_result(SDPA_WINDOW_ATTENTION, module, geometry, windows)]
    if CPU_FLASH:
        fast.append(_attention_result(lean_attention.lean_window_attention, module, geometry,
                                      windows, **LEAN_ATTENTION))
    for result in fast:
        assert _max_relative_diff(result, reference) <= tol


@pytest.mark.skipif(not CPU_FLASH, reason='the probe found no usable CPU flash kernel')
def test_lean_attention_reads_a_strided_mask_correctly():
    """The layout the model used to give the kernel (bias permuted: stride `heads` in the
    last dimension) must give the same result as the reference, on every torch."""
    module, geometry = _model_attention(heads=3, shifted=True, dtype=torch.float32)
    n = 49
    table = module.relative_position_bias_table[module.relative_position_index.view(-1)]
    strided = table.view(n, n, 3).permute(2, 0, 1).unsqueeze(0) + geometry.mask.unsqueeze(1)
    assert strided.stride(-1) == 3
    windows = torch.randn(2 * geometry.gather.numel() // n, n, 24,
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        args = (windows, module.qkv, strided, 3, module.scale)
        fast = lean_attention.lean_window_attention(*args, **LEAN_ATTENTION)
        reference = attention.reference_window_attention(*args)
    assert float((fast - reference).abs().max()) <= 1e-5


def test_reference_attention_is_the_math_of_mmdet():
    """Known answer: softmax((q * scale) @ k^T + mask) @ v, written out per element."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    mask = torch.randn(1, 3, 5, 5, generator=gen, dtype=torch.float64)
    logits = torch.einsum('bhid,bhjd->bhij', q, k) * 0.7 + mask
    expected = torch.einsum('bhij,bhjd->bhid', torch.exp(logits) /
                            torch.exp(logits).sum(-1, keepdim=True), v)
    result = attention.reference_attention(q, k, v, mask, 0.7)
    assert float((result - expected).abs().max()) <= 1e-12
    assert torch.equal(attention.reference_attention(q, k, v, None, None),
                       attention.reference_attention(q, k, v, None, 4 ** -0.5))


@pytest.mark.parametrize('scratch_bytes', [1 << 23, 100])
@pytest.mark.parametrize('grad', [False, True])
def test_lean_mlp_matches_reference(scratch_bytes, grad):
    """100 bytes of scratch: a chunk of one hidden row, so every boundary is crossed."""
    gen = torch.Generator().manual_seed(0)
    layers = SwinFFN(6, 24).layers
    fc1, fc2 = layers[0][0], layers[1]
    x = torch.randn(2, 5, 3, 6, generator=gen, requires_grad=grad)
    results = []
    for function in (lambda: mlp.reference_mlp(x, layers),
                     lambda: mlp.lean_gelu_mlp(x, fc1, fc2, scratch_bytes=scratch_bytes)):
        layers.zero_grad()
        with torch.set_grad_enabled(grad):
            out = function()
        assert out.shape == x.shape
        result = [out.detach()]
        if grad:
            x.grad = None
            out.square().sum().backward()
            result += [x.grad] + [p.grad for p in (*fc1.parameters(), *fc2.parameters())]
        results.append(result)
    assert _max_relative_diff(results[1], results[0]) <= 1e-5


def test_the_probe_finds_the_cpu_flash_kernel_where_torch_ships_a_correct_one():
    """Absent where the op is (torch < 2.3); found for float32 from torch 2.8 on, whose
    kernel reads the model's masks right (2.3-2.7 may be refused: their results were
    wrong with some mask layouts)."""
    has_op = hasattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu')
    found = running_torch().cpu_flash_dtypes
    if not has_op:
        assert found == ()
    elif tuple(int(v) for v in torch.__version__.split('.')[:2]) >= (2, 8):
        assert torch.float32 in found and torch.float64 in found


def test_auto_takes_the_lean_cpu_kernels_where_the_probe_found_them():
    names = select_kernels('cpu').names()
    assert names['window_attention'] == ('cpu_window_attention' if CPU_FLASH
                                         else 'reference_window_attention')
    assert names['mlp'] == 'cpu_mlp'
    assert (names['partition'], names['merge']) == ('lean_partition', 'lean_merge')


def test_a_torch_without_the_private_ops_gets_the_references():
    missing = Capabilities(cpu_flash_dtypes=(), softmax_backward_out=False,
                           gelu_out_kernels=False, sdpa_scale=False)
    names = build_kernels('cpu', 'auto', 1 << 23, missing).names()
    assert names['window_attention'] == 'reference_window_attention'
    assert names['mlp'] == 'reference_mlp'


def test_graph_capture_gets_the_references():
    assert select_kernels('cpu', 'auto', capturing=True) is select_kernels('cpu', 'reference')


def _window_attention_case():
    module, tables = _model_attention(heads=2, shifted=True, dtype=torch.float32)
    windows = torch.randn(2 * tables.gather.numel() // 49, 49, 16,
                          generator=torch.Generator().manual_seed(3))
    return windows, module.qkv, module.attn_mask(tables.mask), 2, module.scale


@pytest.mark.parametrize('dropout_p,flash_dtypes', [(0.2, (torch.float32,)), (0., ())])
def test_cpu_attention_takes_the_reference_under_dropout_or_an_unprobed_dtype(
        dropout_p, flash_dtypes):
    """Same random stream, same ops: the result is the reference's, bit for bit."""
    args = _window_attention_case()
    with torch.no_grad():
        torch.manual_seed(0)
        chosen = cpu_window_attention(*args, dropout_p, scratch_bytes=1 << 23,
                                      flash_dtypes=flash_dtypes)
        torch.manual_seed(0)
        reference = attention.reference_window_attention(*args, dropout_p)
    assert torch.equal(chosen, reference)


@pytest.mark.parametrize('act_cfg,drop_rate,training', [
    (dict(type='GELU'), 0.3, True), (dict(type='ReLU'), 0., False)])
def test_cpu_mlp_runs_the_modules_under_dropout_or_another_activation(act_cfg, drop_rate,
                                                                      training):
    ffn = SwinFFN(8, 16, act_cfg, drop_rate).train(training)
    x = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.manual_seed(0)
        chosen = cpu_mlp(x, ffn.layers, scratch_bytes=1 << 23)
        torch.manual_seed(0)
        expected = ffn.layers(x)
    assert torch.equal(chosen, expected)
    assert not torch.equal(chosen, mlp.lean_gelu_mlp(x, ffn.layers[0][0], ffn.layers[1],
                                                     scratch_bytes=1 << 23))


def test_under_torch_compile_the_cpu_kernels_work_in_one_chunk(monkeypatch):
    """The compiler fuses by itself: the kernels selected while compiling have no chunk
    budget (scratch_bytes None), those selected eagerly keep it."""
    monkeypatch.setattr('swin_mm.kernels.selection.is_compiling', lambda: True)
    compiled = select_kernels('cpu', 'auto', 12345)
    monkeypatch.undo()
    eager = select_kernels('cpu', 'auto', 12345)
    assert compiled.mlp.keywords['scratch_bytes'] is None
    assert eager.mlp.keywords['scratch_bytes'] == 12345


@pytest.mark.parametrize('device_type', ['cuda', 'mps', 'xpu'])
def test_accelerators_take_only_public_ops(device_type):
    """Until the lean kernels' CUDA tests have passed on a GPU (tests/test_cuda_kernels.py)."""
    names = select_kernels(device_type).names()
    assert names == dict(window_attention='sdpa_window_attention', attention='sdpa_attention',
                         mlp='reference_mlp', partition='reference_partition',
                         merge='reference_merge',
                         cosine_window_attention='sdpa_cosine_window_attention')


def test_reference_mode_is_reference_everywhere():
    for device_type in ('cpu', 'cuda'):
        assert all(name.startswith('reference_')
                   for name in select_kernels(device_type, 'reference').names().values())


def test_unknown_kernel_mode_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"kernels must be one of \('auto', 'reference'\), "
                                         r"got 'fast'"):
        SwinBackbone(kernels='fast')


@pytest.mark.parametrize('scale', [None, 0.3])
def test_sdpa_scale_folded_into_q_where_torch_lacks_the_argument(scale):
    """torch 2.0 has no scale= argument: folding it into q must give the same result."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    mask = torch.randn(1, 3, 5, 5, generator=gen, dtype=torch.float64)
    expected = attention.reference_attention(q, k, v, mask, scale)
    for takes_scale in (True, False) if running_torch().sdpa_scale else (False,):
        result = compat.scaled_dot_product_attention(q, k, v, mask, scale=scale,
                                                     takes_scale=takes_scale)
        assert float((result - expected).abs().max()) <= 1e-12


def test_autocast_dtype_reads_the_active_autocast():
    assert compat.autocast_dtype('cpu') is None
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert compat.autocast_dtype('cpu') == torch.bfloat16
        assert compat.autocast_dtype('cuda') is None


def test_is_compiling_is_true_only_inside_a_trace():
    seen = []

    def record(x):
        seen.append(compat.is_compiling())
        return x + 1

    torch.compile(record, backend='eager', fullgraph=True)(torch.zeros(1))
    assert seen == [True] and not compat.is_compiling()
