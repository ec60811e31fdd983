"""Every way weights reach SwinBackbone fits them the same way (its load hook).

A window-12 checkpoint goes into a window-7 model through ``init_cfg=Pretrained``, a
plain ``load_state_dict``, mmengine's ``load_from`` and ``--resume`` (a real Runner each
time); the reference is mmdet's own resizing in its ``init_cfg`` loading, applied to the
same file. An official-layout detection release (Swin-Det: official names under
``backbone.``) goes in through ``load_from``; the reference is mmdet's ``swin_converter``.
"""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.model import BaseModel
from mmengine.runner import Runner

from helpers import SMALL, in_eval, max_abs_diff, mmdet_swin, pretrained, randomize_
from swin_layouts import official_state_dict
from swin_mm import SwinBackbone
from swin_mm_dev.checkpoint_safety import read_checkpoints_weights_only

TABLE = 'stages.2.blocks.1.attn.w_msa.relative_position_bias_table'


class _Probe(BaseModel):
    """The smallest model a Runner trains: a SwinBackbone and a loss on its features."""

    def __init__(self, window: int):
        super().__init__()
        self.backbone = SwinBackbone(window_size=window, drop_path_rate=0.0, **SMALL)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        features = self.backbone(inputs)
        return {'loss': sum(f.mean() for f in features)} if mode == 'loss' else features


def _run(work_dir, model, iters=1, **options):
    """A real Runner: `iters` iterations at lr 0 (the weights stay as loaded)."""
    read_checkpoints_weights_only()  # as the tools do
    data = [dict(inputs=torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(i)))
            for i in range(2)]
    runner = Runner(
        model=model, work_dir=str(work_dir), experiment_name=f'{work_dir.name}_{id(model)}',
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=1, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False)),
        **options)
    runner.train()
    return runner.model


@pytest.fixture(scope='module')
def window_12(tmp_path_factory):
    """(mmengine checkpoint of a window-12 model, mmdet window-7 model fitted from it)."""
    work = tmp_path_factory.mktemp('window_12')
    source = _Probe(window=12)
    randomize_(source)
    source.init_weights = lambda: None  # keep the random values through Runner.train
    _run(work, source)
    path = work / 'iter_1.pth'
    state = torch.load(path, weights_only=False)['state_dict']
    # mmdet cannot load relative_position_index across window sizes: give it the rest.
    peer_file = work / 'for_mmdet.pth'
    torch.save({'state_dict': {k: v for k, v in state.items()
                               if not k.endswith('relative_position_index')}}, peer_file)
    peer = mmdet_swin(window_size=7, **SMALL,
                      init_cfg=ConfigDict(type='Pretrained', checkpoint=str(peer_file)))
    peer.init_weights()
    return path, in_eval(peer)


def _backbone_by(path_kind, checkpoint, tmp_path):
    if path_kind == 'init_cfg':
        return pretrained(checkpoint, window_size=7)
    if path_kind == 'load_state_dict':
        state = torch.load(checkpoint, weights_only=False)['state_dict']
        backbone = {k[len('backbone.'):]: v for k, v in state.items()}
        before = {k: v.clone() for k, v in backbone.items()}
        model = SwinBackbone(window_size=7, drop_path_rate=0.0, **SMALL)
        model.load_state_dict(backbone, strict=True)
        assert all(torch.equal(before[k], v) for k, v in backbone.items())  # input untouched
        return model
    if path_kind == 'load_from':
        return _run(tmp_path / 'load_from', _Probe(window=7), load_from=str(checkpoint)).backbone
    # --resume: the checkpoint's iteration count carries over (1 done, 1 more to run).
    return _run(tmp_path / 'resume', _Probe(window=7), iters=2, load_from=str(checkpoint),
                resume=True).backbone


@pytest.mark.parametrize('path_kind', ['init_cfg', 'load_state_dict', 'load_from', 'resume'])
def test_window_12_checkpoint_fits_a_window_7_model_like_mmdet(path_kind, window_12, tmp_path,
                                                               images):
    checkpoint, peer = window_12
    ours = in_eval(_backbone_by(path_kind, checkpoint, tmp_path))
    assert ours.state_dict()[TABLE].shape == (13 * 13, 4)
    assert torch.allclose(ours.state_dict()[TABLE], peer.state_dict()[TABLE], atol=1e-6)
    x = images(1, 96, 80)
    with torch.no_grad():
        assert max_abs_diff(ours(x), peer(x)) <= 1e-5


def test_official_detection_release_through_load_from(tmp_path, images):
    """A Swin-Det release (official names under ``backbone.``, per-stage norm0..3, neck
    and heads beside) given to load_from, as users of the published detectors do."""
    from mmdet.models.backbones.swin import swin_converter
    official = official_state_dict(SMALL['embed_dims'], SMALL['depths'], SMALL['num_heads'])
    backbone = {k: v for k, v in official.items() if not k.startswith(('head.', 'norm.'))}
    gen = torch.Generator().manual_seed(3)
    for i in range(4):
        channels = SMALL['embed_dims'] * 2 ** i
        backbone[f'norm{i}.weight'] = 1 + 0.1 * torch.randn(channels, generator=gen)
        backbone[f'norm{i}.bias'] = 0.1 * torch.randn(channels, generator=gen)
    path = tmp_path / 'cascade_mask_rcnn_swin_tiny_patch4_window7.pth'
    torch.save({'state_dict': {**{'backbone.' + k: v for k, v in backbone.items()},
                               'neck.fpn_convs.0.conv.weight': torch.zeros(1)},
                'meta': {'epoch': 36}}, path)

    ours = in_eval(_run(tmp_path / 'run', _Probe(window=7), load_from=str(path)).backbone)
    peer = in_eval(mmdet_swin(**SMALL))
    # The stand-in file's relative_position_index is a placeholder (zeros): mmdet keeps
    # the index it computes itself, as our loading does.
    converted = {k[len('backbone.'):]: v for k, v in swin_converter(backbone).items()
                 if not k.endswith('relative_position_index')}
    result = peer.load_state_dict(converted, strict=False)
    assert all(k.endswith('relative_position_index') for k in result.missing_keys)
    x = images(1, 96, 80)
    with torch.no_grad():
        assert max_abs_diff(ours(x), peer(x)) <= 1e-5
