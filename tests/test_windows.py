"""Window geometry: the shift mask."""
import torch

from swin_mm.models.windows import WindowGeometry


def test_shift_mask_gives_exact_zero_probabilities_not_subnormals():
    """mmdet masks with -100, whose exp (~4e-44) is a subnormal float: on x86 CPUs exp
    and matmul on subnormals run 30-60x slower. Masked pairs must get exact zeros."""
    geometry = WindowGeometry.build((14, 14), (7, 7), (3, 3), torch.device('cpu'))
    probs = torch.softmax(geometry.mask, dim=-1)
    nonzero = probs[probs != 0]
    assert (probs == 0).any(), 'the shifted windows of a 14x14 map mix regions'
    assert (nonzero >= torch.finfo(probs.dtype).tiny).all()
