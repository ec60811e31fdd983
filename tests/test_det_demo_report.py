"""tools/det_demo_report.py on the files a detection run and tools/test.py --tta leave.

The whole report (training, the TTA test, the untrained baseline, the plots) runs in
`make demo`; this checks its reading and plotting on small files written here.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def report():
    spec = importlib.util.spec_from_file_location('det_demo_report',
                                                  REPO / 'tools' / 'det_demo_report.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_run(work_dir: Path):
    scalars = work_dir / '20260101_000000' / 'vis_data' / 'scalars.json'
    scalars.parent.mkdir(parents=True)
    records = [dict(step=i, loss=3.0 / i) for i in range(1, 5)]
    records += [{'step': 2, 'coco/bbox_mAP': 0.2, 'coco/segm_mAP': 0.3},
                {'step': 4, 'coco/bbox_mAP': 0.6, 'coco/segm_mAP': 0.5}]
    scalars.write_text(''.join(json.dumps(r) + '\n' for r in records))
    test = work_dir / 'tta' / '20260101_000100' / '20260101_000100.json'
    test.parent.mkdir(parents=True)
    test.write_text(json.dumps({'coco/bbox_mAP': 0.65, 'coco/segm_mAP': 0.55}))


def test_reads_the_runs_and_plots(report, tmp_path):
    _write_run(tmp_path)
    train, val = report.read_training(tmp_path)
    assert train[0] == (1, 3.0) and val == [(2, 0.2, 0.3), (4, 0.6, 0.5)]
    assert report.read_test_metrics(tmp_path / 'tta')['coco/segm_mAP'] == 0.55
    report.plot_curves(train, val, {'coco/bbox_mAP': 0.0, 'coco/segm_mAP': 0.0},
                       tmp_path / 'curves.png')
    image = np.full((20, 30, 3), 128, np.uint8)
    masks = np.zeros((1, 20, 30), bool)
    masks[0, 5:10, 5:15] = True
    pred = InstanceData(bboxes=torch.tensor([[5., 5., 15., 10.]]), labels=torch.tensor([1]),
                        scores=torch.tensor([0.9]), masks=torch.from_numpy(masks))
    truth = ([[5., 5., 15., 10.]], [1], masks)
    report.plot_predictions([(image, truth, pred, pred)], ['a', 'b'], tmp_path / 'pred.png')
    assert (tmp_path / 'curves.png').stat().st_size > 0
    assert (tmp_path / 'pred.png').stat().st_size > 0


def test_missing_runs_are_clear_errors(report, tmp_path):
    with pytest.raises(FileNotFoundError, match='has training run'):
        report.read_training(tmp_path)
    with pytest.raises(FileNotFoundError, match=r'has tools/test.py --tta run'):
        report.read_test_metrics(tmp_path)
