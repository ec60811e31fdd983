"""Swin state dicts in the layouts of other implementations, built from those
implementations (timm, mmpretrain) or from the official key schema, never from swin_mm."""
import re

import torch

from helpers import in_eval, randomize_


def timm_swin(arch, img_size, window_size=7, seed=0):
    """A randomised timm Swin v1 with `arch` (SMALL/TINY-style dict)."""
    from timm.models.swin_transformer import SwinTransformer
    model = SwinTransformer(img_size=img_size, patch_size=4, window_size=window_size,
                            embed_dim=arch['embed_dims'], depths=arch['depths'],
                            num_heads=arch['num_heads'], num_classes=10, drop_path_rate=0.0)
    return in_eval(randomize_(model, seed))


def official_from_timm(model) -> dict:
    """The official microsoft/Swin-Transformer state dict of a timm model: timm's
    checkpoint_filter_fn undone (merging back to the end of the previous stage,
    head.fc -> head) plus the buffers the official code saves and timm does not."""
    official = {}
    for key, value in model.state_dict().items():
        key = re.sub(r'layers\.(\d+)\.downsample',
                     lambda m: f'layers.{int(m.group(1)) - 1}.downsample', key)
        official[key.replace('head.fc.', 'head.')] = value
    for name, buffer in model.named_buffers():
        if name.endswith(('relative_position_index', 'attn_mask')):
            official[name] = buffer
    return official


def official_state_dict(embed_dims, depths, num_heads, window_size=7, img_size=224,
                        num_classes=1000, seed=0) -> dict:
    """Random tensors under the official Swin v1 key schema (models/swin_transformer.py)."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen) * 0.02

    def ones_and_zeros(prefix, channels):
        return {prefix + '.weight': 1 + rand(channels), prefix + '.bias': rand(channels)}

    n = window_size * window_size
    state = {'patch_embed.proj.weight': rand(embed_dims, 3, 4, 4),
             'patch_embed.proj.bias': rand(embed_dims)}
    state.update(ones_and_zeros('patch_embed.norm', embed_dims))
    resolution = img_size // 4
    for i, (depth, heads) in enumerate(zip(depths, num_heads)):
        c = embed_dims * 2 ** i
        for j in range(depth):
            block = f'layers.{i}.blocks.{j}.'
            state.update(ones_and_zeros(block + 'norm1', c))
            state[block + 'attn.relative_position_bias_table'] = rand((2 * window_size - 1) ** 2,
                                                                      heads)
            state[block + 'attn.relative_position_index'] = torch.zeros(n, n, dtype=torch.long)
            state[block + 'attn.qkv.weight'] = rand(3 * c, c)
            state[block + 'attn.qkv.bias'] = rand(3 * c)
            state[block + 'attn.proj.weight'] = rand(c, c)
            state[block + 'attn.proj.bias'] = rand(c)
            state.update(ones_and_zeros(block + 'norm2', c))
            state[block + 'mlp.fc1.weight'] = rand(4 * c, c)
            state[block + 'mlp.fc1.bias'] = rand(4 * c)
            state[block + 'mlp.fc2.weight'] = rand(c, 4 * c)
            state[block + 'mlp.fc2.bias'] = rand(c)
            if j % 2 and resolution > window_size:
                windows = (resolution // window_size) ** 2
                state[block + 'attn_mask'] = torch.zeros(windows, n, n)
        if i < len(depths) - 1:
            state.update(ones_and_zeros(f'layers.{i}.downsample.norm', 4 * c))
            state[f'layers.{i}.downsample.reduction.weight'] = rand(2 * c, 4 * c)
            resolution //= 2
    c = embed_dims * 2 ** (len(depths) - 1)
    state.update(ones_and_zeros('norm', c))
    state['head.weight'] = rand(num_classes, c)
    state['head.bias'] = rand(num_classes)
    return state
