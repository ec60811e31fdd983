"""SwinBackbone, the converter and checkpoint loading on the running torch, against what
mmdet's SwinTransformer computed (see tests/goldens.py).

`make test` runs this file twice: in the main stack (goldens made in the same run) and in
the torch 2.1.2 stack with mmcv built without ops, where mmdet cannot run. Without
SWIN_MM_GOLDENS the goldens are made here (needs mmdet and timm).
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import goldens as G
from helpers import RunsCode, assert_same_gradient, max_abs_diff
from swin_mm import SwinBackbone
from swin_mm.checkpoints import CheckpointError, read_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = ['auto', 'reference']


@pytest.fixture(scope='module')
def goldens(tmp_path_factory):
    directory = os.environ.get('SWIN_MM_GOLDENS')
    if not directory:
        directory = str(tmp_path_factory.mktemp('goldens'))
        G.make(directory)
    return G.load(directory)


def _ours(goldens, **kwargs):
    model = SwinBackbone(**G.ARCH, drop_path_rate=0.0, **kwargs)
    model.load_state_dict(goldens['state_dict'], strict=True)
    return model


@pytest.mark.parametrize('kernels', KERNELS)
@pytest.mark.parametrize('size', [f'{h}x{w}' for h, w in G.EVAL_SIZES])
def test_eval_outputs_match_mmdet(goldens, kernels, size):
    model = _ours(goldens, kernels=kernels).eval()
    with torch.no_grad():
        outputs = model(G.eval_inputs()[size])
    assert max_abs_diff(outputs, goldens['eval_outputs'][size]) <= 1e-5


@pytest.mark.parametrize('with_cp', [False, True])
@pytest.mark.parametrize('kernels', KERNELS)
def test_training_outputs_and_gradients_match_mmdet(goldens, kernels, with_cp):
    model = _ours(goldens, kernels=kernels, with_cp=with_cp).train()
    x = G.train_input().requires_grad_()
    outputs = model(x)
    assert max_abs_diff(outputs, goldens['train_outputs']) <= 1e-5
    G.train_loss(outputs).backward()
    assert_same_gradient(x.grad, goldens['input_grad'])
    for name, param in model.named_parameters():
        assert_same_gradient(param.grad, goldens['param_grads'][name])


@pytest.mark.parametrize('kernels', KERNELS)
def test_bf16_autocast_follows_mmdet_float32(goldens, kernels):
    model = _ours(goldens, kernels=kernels).train()
    x = G.train_input().requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outputs = model(x)
        loss = G.train_loss([out.float() for out in outputs])
    loss.backward()
    for ours, peer in zip(outputs, goldens['train_outputs']):
        assert F.cosine_similarity(ours.float().flatten(), peer.flatten(), dim=0) > 0.99
    assert F.cosine_similarity(x.grad.flatten(), goldens['input_grad'].flatten(), dim=0) > 0.99


def test_global_attention_layer_starts_as_identity(goldens):
    model = SwinBackbone(**G.ARCH, drop_path_rate=0.0, global_attn=True)
    model.init_weights()
    result = model.load_state_dict(goldens['state_dict'], strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(k.startswith('global_attn.') for k in result.missing_keys)
    with torch.no_grad():
        outputs = model.eval()(G.eval_inputs()['227x301'])
    assert max_abs_diff(outputs, goldens['eval_outputs']['227x301']) <= 1e-5


def _official_outputs_match(model, goldens):
    with torch.no_grad():
        for size, x in G.eval_inputs().items():
            assert max_abs_diff(model.eval()(x), goldens['official_outputs'][size]) <= 1e-5


def test_swin2mm_converts_an_official_file_as_mmdet_reads_it(goldens, tmp_path):
    dst = tmp_path / 'converted.pth'
    done = subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'swin2mm.py'),
                           goldens['official_path'], str(dst), '--verify'],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'verify:' in done.stdout
    converted = read_checkpoint(str(dst))['state_dict']  # detector layout: backbone.*
    model = SwinBackbone(**G.ARCH, drop_path_rate=0.0)
    result = model.load_state_dict({k[len('backbone.'):]: v for k, v in converted.items()},
                                   strict=False)
    # A classification file has one final norm (-> norm3); norm0..2 keep their init in both.
    assert sorted(result.missing_keys) == [f'norm{i}.{p}' for i in range(3)
                                           for p in ('bias', 'weight')]
    assert result.unexpected_keys == []
    _official_outputs_match(model, goldens)


def test_init_cfg_loads_an_official_file_as_mmdet_does(goldens):
    model = SwinBackbone(**G.ARCH, drop_path_rate=0.0, init_cfg=dict(
        type='Pretrained', checkpoint=goldens['official_path']))
    model.init_weights()
    _official_outputs_match(model, goldens)


def test_mmengine_checkpoint_with_numpy_and_history_reads_safely(tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer
    buffer = HistoryBuffer()
    buffer.update(0.5)
    checkpoint = dict(state_dict={'w': torch.ones(2)},
                      meta=dict(epoch=np.int64(3), lr=np.float64(1e-4), seed=np.int32(7),
                                scores=np.arange(3.0)),
                      message_hub=dict(log_scalars={'loss': buffer}))
    path = tmp_path / 'epoch_3.pth'
    torch.save(checkpoint, path)
    loaded = read_checkpoint(str(path))
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
    assert loaded['meta']['epoch'] == 3 and loaded['meta']['lr'] == 1e-4
    assert np.array_equal(loaded['meta']['scores'], np.arange(3.0))


def test_code_carrying_checkpoint_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': RunsCode(tmp_path / 'ran')}, path)
    with pytest.raises(CheckpointError, match='refused'):
        read_checkpoint(str(path))
    assert not (tmp_path / 'ran').exists()
