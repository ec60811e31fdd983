"""The HTC++ extra global self-attention layer (Swin paper, appendix A2.2)."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper

from helpers import SMALL, in_eval, max_abs_diff, mmdet_swin, randomize_
from swin_mm import SwinBackbone


def _with_global_attn(peer, **kwargs):
    ours = SwinBackbone(drop_path_rate=0.0, global_attn=True, **SMALL, **kwargs)
    ours.init_weights()
    missing, unexpected = ours.load_state_dict(peer.state_dict(), strict=False)
    assert not unexpected and all(k.startswith('global_attn.') for k in missing)
    return ours


def test_off_by_default():
    assert SwinBackbone(**SMALL).global_attn is None


@pytest.mark.slow
def test_starts_as_identity_on_a_pretrained_backbone(images):
    peer = in_eval(randomize_(mmdet_swin(**SMALL)))
    ours = _with_global_attn(peer).eval()
    for size in [(64, 64), (97, 203), (1, 1)]:
        x = images(2, *size)
        with torch.no_grad():
            assert max_abs_diff(ours(x), peer(x)) <= 1e-5


def test_applies_between_last_stage_and_its_norm_and_learns(images):
    peer = randomize_(mmdet_swin(**SMALL))
    ours = _with_global_attn(peer)
    optimizer = torch.optim.SGD(ours.global_attn.parameters(), lr=0.5)
    x = images(2, 96, 64)
    ours(x)[-1].square().mean().backward()
    assert ours.global_attn.attn.proj.weight.grad.abs().sum() > 0
    optimizer.step()
    ours.eval()
    peer.eval()
    with torch.no_grad():
        outs = ours(x)
        tokens, hw = peer.patch_embed(x)
        for stage in peer.stages:
            tokens, hw, last, last_hw = stage(tokens, hw)
        last = ours.global_attn(last.view(2, *last_hw, -1))
        expected_last = peer.norm3(last).permute(0, 3, 1, 2)
        assert max_abs_diff(outs[:3], peer(x)[:3]) <= 1e-5
        assert max_abs_diff(outs[3:], [expected_last]) <= 1e-5
        assert not torch.allclose(outs[3], peer(x)[3], atol=1e-3)


def test_norms_get_no_weight_decay_through_custom_keys():
    model = SwinBackbone(global_attn=dict(num_heads=4), **SMALL)
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.),
                                        'relative_position_bias_table': dict(decay_mult=0.)})))
    decay = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups for p in g['params']}
    layer = model.global_attn
    assert decay[id(layer.norm1.weight)] == 0 and decay[id(layer.norm2.bias)] == 0
    assert decay[id(layer.attn.qkv.weight)] == 0.05
    assert layer.attn.num_heads == 4
