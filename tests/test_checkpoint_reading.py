"""read_checkpoint: mmengine's files on every torch, torch's allow-list untouched, nothing run."""
import numpy as np
import pytest
import torch

from helpers import SMALL, RunsCode
from swin_mm import SwinBackbone
from swin_mm.checkpoints import CheckpointError, read_checkpoint
from swin_mm_dev.checkpoint_safety import read_checkpoints_weights_only


def _mmengine_style(path):
    """What mmengine's Runner saves: numpy scalars in meta, HistoryBuffers in the hub."""
    from mmengine.logging import MessageHub
    hub = MessageHub('reading_test')
    hub.update_scalar('train/loss', np.float64(0.75))
    hub.update_scalar('val/mIoU', 41.5)
    hub.update_info('iter', 4)
    checkpoint = dict(meta=dict(epoch=np.int64(1), iter=4, seed=np.int32(7),
                                lr=np.float64(1e-4), hist=np.arange(3.0)),
                      state_dict={'backbone.w': torch.ones(2), 'h': torch.zeros(1, 2).bfloat16()},
                      message_hub=hub.state_dict())
    torch.save(checkpoint, path)
    return path


def test_reads_what_torchs_full_unpickler_reads(tmp_path):
    path = _mmengine_style(tmp_path / 'iter_4.pth')
    ours, full = read_checkpoint(str(path)), torch.load(path, weights_only=False)
    assert ours['meta'].keys() == full['meta'].keys()
    for key, value in full['meta'].items():
        assert type(ours['meta'][key]) is type(value) and np.array_equal(ours['meta'][key], value)
    assert all(torch.equal(ours['state_dict'][k], v) for k, v in full['state_dict'].items())
    buffers = ours['message_hub']['log_scalars']
    assert buffers['train/loss'].current() == 0.75 and buffers['val/mIoU'].mean() == 41.5


@pytest.mark.skipif(not hasattr(torch.serialization, 'get_safe_globals'),
                    reason='this torch has no process-wide allow-list (before 2.5)')
def test_reading_leaves_torchs_allow_list_alone(tmp_path):
    path = _mmengine_style(tmp_path / 'iter_4.pth')
    before = set(map(repr, torch.serialization.get_safe_globals()))
    read_checkpoint(str(path))
    assert set(map(repr, torch.serialization.get_safe_globals())) == before


def test_mmengine_loads_go_through_the_weights_only_reader(tmp_path):
    """What the tools set up: mmengine's loader (load_from, --resume, test checkpoints)
    reads an mmengine checkpoint whole and refuses a code-carrying one, on any torch."""
    from mmengine.runner.checkpoint import _load_checkpoint
    read_checkpoints_weights_only()
    resumed = _load_checkpoint(str(_mmengine_style(tmp_path / 'iter_4.pth')))
    assert resumed['message_hub']['log_scalars']['train/loss'].current() == 0.75
    evil = tmp_path / 'evil.pth'
    marker = tmp_path / 'ran'
    torch.save({'state_dict': {}, 'x': RunsCode(marker)}, evil)
    with pytest.raises(CheckpointError, match='refused'):
        _load_checkpoint(str(evil))
    assert not marker.exists()


class _ReadsAFileMethod:
    """getattr(numpy.ndarray, 'tofile') would hand the pickle a method that writes files."""

    def __reduce__(self):
        return getattr, (np.ndarray, 'tofile')


def test_getattr_reaches_history_buffer_statistics_only(tmp_path):
    path = tmp_path / 'sneaky.pth'
    torch.save({'state_dict': {}, 'x': _ReadsAFileMethod()}, path)
    with pytest.raises(CheckpointError, match=r"could run code .*getattr\(<class "
                                              r"'numpy.ndarray'>, 'tofile'\)"):
        read_checkpoint(str(path))


def test_unreachable_url_is_one_line_naming_it_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))  # nothing cached
    monkeypatch.setenv('no_proxy', '*')
    url = 'http://127.0.0.1:9/swin_tiny_patch4_window7_224.pth'  # discard port: refused
    model = SwinBackbone(**SMALL, init_cfg=dict(type='Pretrained', checkpoint=url))
    with pytest.raises(CheckpointError) as error:
        model.init_weights()
    message = str(error.value)
    assert message.startswith(f'could not download {url} (') and '\n' not in message
    assert 'set model.backbone.init_cfg.checkpoint to the local file' in message
    assert not list((tmp_path / 'hub' / 'checkpoints').iterdir())  # no partial file left
