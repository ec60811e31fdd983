"""init_cfg=dict(type='Pretrained') loading of this plugin's (mmdet/mmseg) layout."""

import pytest
import torch
from mmengine.config import ConfigDict

from helpers import SMALL, in_eval, max_abs_diff, mmdet_swin, pretrained, randomize_
from swin_layouts import official_state_dict
from swin_mm import SwinBackbone
from swin_mm.checkpoints.layouts import convert_checkpoint


@pytest.mark.parametrize('wrapper', ['state_dict', 'model', None])
@pytest.mark.parametrize('prefix', ['backbone.', ''])
def test_loads_every_wrapper_and_prefix(wrapper, prefix, tmp_path, images, log_lines):
    peer = in_eval(randomize_(mmdet_swin(**SMALL)))
    state = {prefix + k: v for k, v in peer.state_dict().items()}
    if prefix:
        state['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)  # other detector parts
    path = tmp_path / 'ckpt.pth'
    torch.save({wrapper: state, 'meta': {'epoch': 3}} if wrapper else state, path)
    ours = pretrained(path)
    x = images(1, 90, 77)
    with torch.no_grad():
        assert max_abs_diff(ours(x), peer(x)) <= 1e-5
    assert not any('missing' in line or 'unexpected' in line for line in log_lines.lines)


def test_window_size_change_resizes_like_mmdet(tmp_path, images):
    source = randomize_(mmdet_swin(window_size=7, **SMALL))
    state = {'backbone.' + k: v for k, v in source.state_dict().items()}
    path, peer_path = tmp_path / 'w7.pth', tmp_path / 'w7_no_index.pth'
    torch.save({'state_dict': state}, path)
    # mmdet cannot load its own relative_position_index buffers across window sizes
    # (size mismatch error), so it gets a copy without them; ours takes the full file.
    torch.save({'state_dict': {k: v for k, v in state.items()
                               if not k.endswith('relative_position_index')}}, peer_path)
    peer = mmdet_swin(window_size=12, **SMALL,
                      init_cfg=ConfigDict(type='Pretrained', checkpoint=str(peer_path)))
    peer.init_weights()
    ours = pretrained(path, window_size=12)
    key = 'stages.2.blocks.1.attn.w_msa.relative_position_bias_table'
    assert ours.state_dict()[key].shape == (23 * 23, 4)
    assert torch.allclose(ours.state_dict()[key], peer.state_dict()[key], atol=1e-6)
    x = images(1, 128, 100)
    with torch.no_grad():
        assert max_abs_diff(ours(x), in_eval(peer)(x)) <= 1e-5


def test_non_square_window_resize_matches_timm(tmp_path):
    from timm.layers.pos_embed_rel import resize_rel_pos_bias_table_simple
    source = randomize_(SwinBackbone(**SMALL))
    path = tmp_path / 'w7.pth'
    torch.save(source.state_dict(), path)
    ours = pretrained(path, window_size=(6, 10))
    key = 'stages.1.blocks.0.attn.w_msa.relative_position_bias_table'
    expected = resize_rel_pos_bias_table_simple(source.state_dict()[key], new_window_size=(6, 10),
                                         new_bias_shape=(11 * 19, 2))
    assert torch.allclose(ours.state_dict()[key], expected, atol=1e-5)


def test_abs_pos_embed_resize_matches_timm(tmp_path):
    from timm.layers import resample_abs_pos_embed
    source = randomize_(SwinBackbone(use_abs_pos_embed=True, pretrain_img_size=64, **SMALL))
    path = tmp_path / 'ape.pth'
    torch.save(source.state_dict(), path)
    ours = pretrained(path, use_abs_pos_embed=True, pretrain_img_size=96)
    expected = resample_abs_pos_embed(source.absolute_pos_embed.detach(), new_size=[24, 24],
                                      old_size=[16, 16], num_prefix_tokens=0,
                                      interpolation='bicubic', antialias=False)
    assert torch.allclose(ours.absolute_pos_embed, expected, atol=1e-5)


def test_missing_and_unexpected_keys_are_one_line_each(tmp_path, log_lines):
    state = randomize_(SwinBackbone(**SMALL)).state_dict()
    del state['norm3.weight'], state['stages.0.blocks.0.norm1.bias']
    state['head.fc.weight'] = torch.zeros(3)
    path = tmp_path / 'partial.pth'
    torch.save(state, path)
    pretrained(path)
    missing = [line for line in log_lines.at('WARNING') if 'missing keys' in line]
    unexpected = [line for line in log_lines.at('WARNING') if 'unexpected keys' in line]
    assert len(missing) == 1 and 'norm3.weight' in missing[0] and '\n' not in missing[0]
    assert len(unexpected) == 1 and 'head.fc.weight' in unexpected[0]


def test_keys_missing_by_design_are_info_with_the_reason(tmp_path, log_lines):
    """An HTC++ backbone from a released mmdet checkpoint lacks global_attn by design; an
    official file converted by tools/swin2mm.py lacks the per-stage norms as the raw
    official file does. Neither is a warning; a key the file should have had still is."""
    peer = randomize_(mmdet_swin(**SMALL))
    torch.save({'state_dict': peer.state_dict()}, tmp_path / 'mmdet.pth')
    pretrained(tmp_path / 'mmdet.pth', global_attn=True)
    assert log_lines.at('WARNING') == []
    assert any(line.startswith('SwinBackbone: global_attn (') and 'starts as an identity (the '
               'HTC++ global attention layer is new' in line for line in log_lines.at('INFO'))

    official = official_state_dict(SMALL['embed_dims'], SMALL['depths'], SMALL['num_heads'])
    torch.save({'model': official}, tmp_path / 'official.pth')
    torch.save({'state_dict': convert_checkpoint({'model': official}).state_dict()},
               tmp_path / 'converted.pth')
    for name in ('official.pth', 'converted.pth'):
        log_lines.clear()
        pretrained(tmp_path / name)
        assert log_lines.at('WARNING') == [], name
        assert any('norm0, norm1, norm2 keep their initialisation (the checkpoint has no '
                   'per-stage output norms' in line for line in log_lines.at('INFO')), name

    del official['layers.1.blocks.0.norm1.weight']
    torch.save({'model': official}, tmp_path / 'partial.pth')
    pretrained(tmp_path / 'partial.pth')
    assert any('missing keys 1 (stages.1.blocks.0.norm1.weight)' in line
               for line in log_lines.at('WARNING'))


def test_shape_mismatch_is_a_clear_error(tmp_path):
    state = SwinBackbone(**SMALL).state_dict()
    state['stages.1.blocks.0.ffn.layers.1.weight'] = torch.zeros(3, 3)
    path = tmp_path / 'bad.pth'
    torch.save(state, path)
    with pytest.raises(ValueError, match='expected shape'):
        pretrained(path)
