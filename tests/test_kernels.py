"""The kernel layer: each fast path against its public-op reference on the model's own
tensors, the choice of path, and the torch-version shims."""
import pytest
import torch
import torch.nn.functional as F

from swin_mm import SwinBackbone
from swin_mm.kernels import attention, compat, mlp, partition, select_kernels
from swin_mm.kernels.probes import Capabilities
from swin_mm.kernels.selection import build_kernels
from swin_mm.models.layers import WindowAttention
from swin_mm.geometry.windows import WindowGeometry

HAS_CPU_FLASH = hasattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu')
LEAN_ATTENTION = dict(scratch_bytes=1 << 23, flash_dtypes=(torch.float32, torch.float64))


def _model_attention(heads, shifted, dtype, window=(7, 7), hw=(17, 23)):
    """A WindowAttention with random weights (a spread-out bias table, so attention is
    far from uniform), and the geometry of a (hw) map: multi-head, padded, shifted or not."""
    gen = torch.Generator().manual_seed(heads)
    module = WindowAttention(8 * heads, heads, window).to(dtype)
    with torch.no_grad():
        for name, param in module.named_parameters():
            scale = 1.0 if name == 'relative_position_bias_table' else 0.2
            param.copy_(torch.randn(param.shape, generator=gen) * scale)
    shift = tuple(w // 2 for w in window) if shifted else (0, 0)
    return module, WindowGeometry.build(hw, window, shift, torch.device('cpu'))


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
    windows = partition.reference_partition(x, geometry.gather, geometry.scatter,
                                            geometry.padding_slots, 49)
    reference = _attention_result(attention.reference_window_attention, module, geometry,
                                  windows)
    fast = [_attention_result(attention.sdpa_window_attention, module, geometry, windows)]
    if HAS_CPU_FLASH:
        fast.append(_attention_result(attention.lean_window_attention, module, geometry,
                                      windows, **LEAN_ATTENTION))
    for result in fast:
        assert _max_relative_diff(result, reference) <= tol


@pytest.mark.skipif(not HAS_CPU_FLASH, reason='this torch has no CPU flash kernel')
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
        fast = attention.lean_window_attention(*args, **LEAN_ATTENTION)
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
    fc1, fc2 = torch.nn.Linear(6, 24), torch.nn.Linear(24, 6)
    x = torch.randn(2, 5, 3, 6, generator=gen, requires_grad=grad)
    results = []
    for function, kwargs in ((mlp.reference_gelu_mlp, {}),
                             (mlp.lean_gelu_mlp, dict(scratch_bytes=scratch_bytes))):
        for module in (fc1, fc2):
            module.zero_grad()
        with torch.set_grad_enabled(grad):
            out = function(x, fc1, fc2, **kwargs)
        assert out.shape == x.shape
        result = [out.detach()]
        if grad:
            x.grad = None
            out.square().sum().backward()
            result += [x.grad] + [p.grad for p in (*fc1.parameters(), *fc2.parameters())]
        results.append(result)
    assert _max_relative_diff(results[1], results[0]) <= 1e-5


def _pad_roll_cut(x, window, shift):
    """Known answer for partition: the peers' F.pad, torch.roll and window cut."""
    b, h, w, c = x.shape
    x = F.pad(x, (0, 0, 0, -w % window[1], 0, -h % window[0]))
    x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    hp, wp = x.shape[1:3]
    x = x.view(b, hp // window[0], window[0], wp // window[1], window[1], c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window[0] * window[1], c)


def _uncut_unroll_crop(windows, hw, window, shift):
    """Known answer for merge: the peers' inverse (windows back, roll back, crop)."""
    hp, wp = (-(-size // win) * win for size, win in zip(hw, window))
    c = windows.shape[-1]
    x = windows.view(-1, hp // window[0], wp // window[1], window[0], window[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, hp, wp, c)
    x = torch.roll(x, shifts=shift, dims=(1, 2))
    return x[:, :hw[0], :hw[1]]


def _value_and_grad(function, x, seed=1):
    x = x.detach().requires_grad_(True)
    out = function(x)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return out.detach(), torch.autograd.grad((out * weights).sum(), x)[0]


@pytest.mark.parametrize('hw,window,shift', [((17, 23), (7, 7), (3, 3)),
                                             ((14, 14), (7, 7), (0, 0)),
                                             ((9, 20), (4, 6), (2, 3))])
@pytest.mark.parametrize('implementation', ['reference', 'lean'])
def test_partition_and_merge_match_pad_roll_cut(hw, window, shift, implementation):
    """Both implementations against the peers' pad -> roll -> cut and its inverse,
    values and gradients (odd sizes, so padding is cut and cropped)."""
    part, merge = {'reference': (partition.reference_partition, partition.reference_merge),
                   'lean': (partition.lean_partition, partition.lean_merge)}[implementation]
    geometry = WindowGeometry.build(hw, window, shift, torch.device('cpu'))
    tables = (geometry.gather, geometry.scatter, geometry.padding_slots)
    x = torch.randn(2, *hw, 3, generator=torch.Generator().manual_seed(0))
    ours = _value_and_grad(lambda t: part(t, *tables, window[0] * window[1]), x)
    peers = _value_and_grad(lambda t: _pad_roll_cut(t, window, shift), x)
    assert all(map(torch.equal, ours, peers))
    windows = ours[0]
    ours = _value_and_grad(lambda t: merge(t, *tables, geometry.hw), windows)
    peers = _value_and_grad(lambda t: _uncut_unroll_crop(t, hw, window, shift), windows)
    assert torch.equal(ours[0], x)
    assert all(map(torch.equal, ours, peers))


def test_auto_takes_the_lean_cpu_kernels_where_this_torch_has_them():
    """The probe finds the CPU flash kernel exactly where the op exists (2.3+) and
    gives its implementation; everything else stays on a public-op path."""
    names = select_kernels('cpu').names()
    assert names['window_attention'] == ('lean_window_attention' if HAS_CPU_FLASH
                                         else 'reference_window_attention')
    assert names['gelu_mlp'] == 'lean_gelu_mlp'
    assert (names['partition'], names['merge']) == ('lean_partition', 'lean_merge')


def test_a_torch_without_the_private_ops_gets_the_references():
    missing = Capabilities(cpu_flash_dtypes=(), softmax_backward_out=False,
                           gelu_out_kernels=False)
    names = build_kernels('cpu', 'auto', 1 << 23, missing).names()
    assert names['window_attention'] == 'reference_window_attention'
    assert names['gelu_mlp'] == 'reference_gelu_mlp'


@pytest.mark.parametrize('device_type', ['cuda', 'mps', 'xpu'])
def test_accelerators_take_only_public_ops(device_type):
    """Until the lean kernels' CUDA tests have passed on a GPU (tests/test_cuda_kernels.py)."""
    names = select_kernels(device_type).names()
    assert names == dict(window_attention='sdpa_window_attention', attention='sdpa_attention',
                         gelu_mlp='reference_gelu_mlp', partition='reference_partition',
                         merge='reference_merge')


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
    for takes_scale in (True, False) if compat.SDPA_TAKES_SCALE else (False,):
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
