"""torch.compile without graph breaks, and mixed precision close to float32."""
import pytest
import torch

from helpers import SMALL, randomize_
from swin_mm import SwinBackbone

# A narrow model (few channels, one block per stage but the shifted block of stage 0
# is kept) so that the full 800x1344 detection size stays fast on a CPU.
NARROW = dict(embed_dims=16, depths=(2, 1, 1, 1), num_heads=(1, 2, 4, 8), drop_path_rate=0.)

# Unit roundoff of each half format (2^-8 for bfloat16, 2^-11 for float16).
UNIT_ROUNDOFF = {torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11}


@pytest.mark.slow  # torch.compile's tracing: about 5 s per kernel set
@pytest.mark.parametrize('kernels', ['auto', 'reference'])
def test_forward_traces_as_one_graph(kernels, images):
    """Kernel selection included: it must run in the trace without tensor work."""
    torch._dynamo.reset()
    model = randomize_(SwinBackbone(**SMALL, drop_path_rate=0., kernels=kernels)).eval()
    explanation = torch._dynamo.explain(model)(images(1, 61, 83))
    assert explanation.graph_break_count == 0, explanation.break_reasons


@pytest.mark.slow
def test_fullgraph_compile_matches_eager_in_training(images):
    """fullgraph=True refuses any graph break; aot_eager also traces the backward."""
    torch._dynamo.reset()
    model = randomize_(SwinBackbone(**SMALL, drop_path_rate=0.)).train()
    compiled = torch.compile(model, fullgraph=True, backend='aot_eager')
    x = images(2, 61, 83)
    results = []
    for run in (model, compiled):
        model.zero_grad()
        outs = run(x)
        sum(o.square().mean() for o in outs).backward()
        results.append(([o.detach() for o in outs],
                        [p.grad.clone() for p in model.parameters()]))
    (eager_outs, eager_grads), (compiled_outs, compiled_grads) = results
    for eager, compiled_out in zip(eager_outs + eager_grads, compiled_outs + compiled_grads):
        assert torch.allclose(eager, compiled_out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_at_800x1344_is_finite_and_close_to_float32(dtype, images):
    """Tolerance relative to the output scale: outputs are layer-normed (rms ~ 1); each
    half-precision op rounds with relative error u, and a handful of roundings survive
    the normalisations, so the mean error must stay within 4u of the output rms and the
    worst element within 4u of the largest output magnitude."""
    model = randomize_(SwinBackbone(**NARROW)).eval()
    x = images(1, 800, 1344)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast('cpu', dtype=dtype):
            mixed = model(x)
    u = UNIT_ROUNDOFF[dtype]
    for low, full in zip(mixed, reference):
        assert low.dtype == dtype and low.shape == full.shape
        assert torch.isfinite(low).all()
        error = (low.float() - full).abs()
        assert float(error.mean()) <= 4 * u * float(full.square().mean().sqrt())
        assert float(error.max()) <= 4 * u * float(full.abs().max())
