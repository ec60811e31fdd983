"""frozen_stages (incl. DDP, also for SwinV2Backbone), with_cp, absolute position embedding at any size, train()."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from helpers import (
    SMALL, assert_same_gradient, free_port, in_eval, max_abs_diff, mmdet_swin, randomize_, twin_of
)
from swin_mm import SwinBackbone, SwinV2Backbone

BACKBONES = dict(ours=SwinBackbone, ours_v2=SwinV2Backbone, mmdet=mmdet_swin)


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 4])
def test_frozen_stages_freeze_what_mmdet_freezes(frozen_stages):
    kwargs = dict(frozen_stages=frozen_stages, out_indices=(0, 2, 3), use_abs_pos_embed=True,
                  **SMALL)
    peer = mmdet_swin(**kwargs)
    peer.train()                         # mmdet freezes only here
    ours = SwinBackbone(**kwargs)        # ours already at construction
    peer_flags = {n: p.requires_grad for n, p in peer.named_parameters()}
    our_flags = {n: p.requires_grad for n, p in ours.named_parameters()}
    assert our_flags == peer_flags
    assert ours.train() is ours
    peer_training = {n: m.training for n, m in peer.named_modules()}
    assert {n: m.training for n, m in ours.named_modules() if n in peer_training} == {
        n: t for n, t in peer_training.items() if n in dict(ours.named_modules())}


def test_frozen_stages_counts():
    ours = SwinBackbone(frozen_stages=1, **SMALL)
    frozen = {n.split('.')[0] + ('.' + n.split('.')[1] if n.startswith('stages') else '')
              for n, p in ours.named_parameters() if not p.requires_grad}
    assert frozen == {'patch_embed', 'stages.0', 'norm0'}


def _ddp_worker(rank, world_size, port, implementation, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    torch.manual_seed(0)
    model = BACKBONES[implementation](frozen_stages=1, **SMALL)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    ddp.train()  # what the runner does after wrapping; mmdet freezes only now
    optimizer = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.1)
    frozen_before = model.patch_embed.projection.weight.clone()
    try:
        for step in range(2):  # the reducer's check fires on the second step
            torch.manual_seed(rank + 10 * step)
            loss = sum(o.mean() for o in ddp(torch.randn(2, 3, 64, 64)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    except RuntimeError as err:
        results[rank] = str(err)
    else:
        results[rank] = (bool(torch.equal(frozen_before, model.patch_embed.projection.weight)),
                         model.stages[1].blocks[0].attn.w_msa.qkv.weight.sum().item())
    dist.destroy_process_group()


def _run_ddp(implementation):
    results = mp.Manager().dict()
    mp.spawn(_ddp_worker, args=(2, free_port(), implementation, results), nprocs=2, join=True)
    return dict(results)


@pytest.mark.slow
@pytest.mark.parametrize('implementation', ['ours', 'ours_v2'])
def test_ddp_training_with_frozen_stages_runs_on_two_gloo_processes(implementation):
    results = _run_ddp(implementation)
    assert results[0][0] and results[1][0], 'frozen weights changed'
    assert results[0][1] == pytest.approx(results[1][1]), 'replicas diverged'


@pytest.mark.slow
def test_mmdet_fails_where_ours_runs():
    """The peer's bug this fixes (mmdetection#8208 and others): same harness, it crashes."""
    results = _run_ddp('mmdet')
    assert all('Expected to have finished reduction' in str(r) for r in results.values())


def test_with_cp_gives_the_same_gradients_as_mmdet_without_it(images):
    peer = randomize_(mmdet_swin(**SMALL))
    ours = twin_of(peer, with_cp=True, **SMALL)
    x = images(2, 70, 90)
    for model in (peer, ours):
        sum(o.square().sum() for o in model(x)).backward()
    peer_params = dict(peer.named_parameters())
    for name, param in ours.named_parameters():
        assert_same_gradient(param.grad, peer_params[name].grad)


def test_abs_pos_embed_is_interpolated_to_other_sizes(images):
    """Reference: mmdet's own modules, with the embedding resized bicubically (Swin-Det rule)."""
    kwargs = dict(use_abs_pos_embed=True, pretrain_img_size=64, **SMALL)
    peer = in_eval(randomize_(mmdet_swin(**kwargs)))
    ours = twin_of(peer, **kwargs).eval()
    x = images(1, 100, 76)
    with torch.no_grad():
        tokens, hw = peer.patch_embed(x)
        grid = peer.absolute_pos_embed.view(1, 16, 16, -1).permute(0, 3, 1, 2)
        embed = F.interpolate(grid, size=hw, mode='bicubic', align_corners=False)
        tokens = tokens + embed.flatten(2).transpose(1, 2)
        expected = []
        for i, stage in enumerate(peer.stages):
            tokens, hw, out, out_hw = stage(tokens, hw)
            out = getattr(peer, f'norm{i}')(out)
            expected.append(out.view(1, *out_hw, -1).permute(0, 3, 1, 2))
        assert max_abs_diff(ours(x), expected) <= 1e-5
