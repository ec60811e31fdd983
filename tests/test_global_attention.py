"""The HTC++ extra global self-attention layer (Swin paper, appendix A2.2): its math
against timm's pre-norm ViT block, its place in the backbone against mmdet's stages."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper

from helpers import SMALL, in_eval, max_abs_diff, mmdet_swin, randomize_
from swin_mm import SwinBackbone
from swin_mm.kernels import select_kernels
from swin_mm.models.global_attention import GlobalAttentionLayer

# timm's Block -> our names: same pre-norm layout and (q, k, v, heads) qkv channels.
_TIMM_NAMES = {'mlp.fc1.': 'ffn.layers.0.0.', 'mlp.fc2.': 'ffn.layers.1.'}


def _with_global_attn(peer, **kwargs):
    ours = SwinBackbone(drop_path_rate=0.0, global_attn=True, **SMALL, **kwargs)
    ours.init_weights()
    missing, unexpected = ours.load_state_dict(peer.state_dict(), strict=False)
    assert not unexpected and all(k.startswith('global_attn.') for k in missing)
    return ours


def _from_timm_block(block, dims, heads):
    ours = GlobalAttentionLayer(dims, heads, mlp_ratio=2.)
    state = {}
    for key, value in block.state_dict().items():
        for theirs, mine in _TIMM_NAMES.items():
            key = mine + key[len(theirs):] if key.startswith(theirs) else key
        state[key] = value
    ours.load_state_dict(state, strict=True)
    return ours


@pytest.mark.parametrize('mode', ['auto', 'reference'])
def test_layer_computes_timms_vision_transformer_block(mode):
    """timm's ``vision_transformer.Block`` (x + attn(norm1(x)), x + mlp(norm2(x)), no
    layer scale) with every weight random, on the flattened map: outputs and the input
    gradient."""
    from timm.models.vision_transformer import Block
    dims, heads = 48, 4
    peer = randomize_(Block(dims, heads, mlp_ratio=2., qkv_bias=True), seed=3)
    ours = _from_timm_block(peer, dims, heads)
    x = torch.randn(2, 5, 7, dims, generator=torch.Generator().manual_seed(0))
    x_peer, x_ours = (x.clone().requires_grad_() for _ in range(2))
    expected = peer(x_peer.view(2, 35, dims)).view(2, 5, 7, dims)
    out = ours(x_ours, select_kernels('cpu', mode))
    assert max_abs_diff([out], [expected]) <= 1e-5
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (expected * weights).sum().backward()
    (out * weights).sum().backward()
    assert max_abs_diff([x_ours.grad], [x_peer.grad]) <= 1e-5


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
        last = ours.global_attn(last.view(2, *last_hw, -1), select_kernels('cpu'))
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
