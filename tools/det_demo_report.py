"""Report of a finished detection run: AP curves, and predictions next to the truth.

    python tools/det_demo_report.py CONFIG WORK_DIR [--tta-dir DIR] [--num-images 4]
writes WORK_DIR/curves.png (training loss, validation box and mask AP) and
WORK_DIR/predictions.png (validation images: ground truth, single-scale prediction,
multi-scale + flip prediction), and prints box and mask AP from mmdet's CocoMetric for
the last checkpoint, for the config's TTA model (the metrics tools/test.py --tta wrote
under --tta-dir), and for the same detector untrained.
"""
import argparse
import json
import sys
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402

from swin_mm_dev.run_records import newest_scalars  # noqa: E402
from swin_mm_dev.checkpoint_safety import read_checkpoints_weights_only  # noqa: E402

METRICS = ('coco/bbox_mAP', 'coco/segm_mAP')
SCORE_SHOWN = 0.3  # predictions drawn: score at least this


def read_training(work_dir: Path):
    """Training losses by iteration and validation (epoch, box AP, mask AP), newest run."""
    records = newest_scalars(work_dir)
    train = [(r['step'], r['loss']) for r in records if 'loss' in r]
    val = [(r['step'], r[METRICS[0]], r[METRICS[1]]) for r in records if METRICS[0] in r]
    return train, val


def read_test_metrics(test_dir: Path) -> dict:
    """The metrics tools/test.py wrote (<timestamp>/<timestamp>.json), newest run."""
    found = sorted(p for p in test_dir.glob('*/*.json') if p.stem == p.parent.name)
    if not found:
        raise FileNotFoundError(f'expected <timestamp>/<timestamp>.json under {test_dir}, '
                                'found none (has tools/test.py --tta run?)')
    return json.loads(found[-1].read_text())


def untrained_metrics(cfg: Config) -> dict:
    """CocoMetric of the same detector as built (untrained), on the validation set."""
    from mmdet.registry import DATASETS, METRICS as METRIC_REGISTRY, MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(cfg.model)
        detector.eval()
        dataset = DATASETS.build(cfg.val_dataloader.dataset)
        metric = METRIC_REGISTRY.build(cfg.val_evaluator)
    metric.dataset_meta = dataset.metainfo
    with torch.no_grad():
        for index in range(len(dataset)):
            batch = pseudo_collate([dataset[index]])
            outputs = detector.test_step(batch)
            metric.process(batch, [output.to_dict() for output in outputs])
    return metric.evaluate(len(dataset))


def plot_curves(train, val, untrained: dict, path: Path) -> None:
    fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(*zip(*train))
    ax_loss.set(title='training loss (RPN + 3 cascade stages)', xlabel='iteration',
                ylabel='loss')
    epochs, box, mask = zip(*val)
    ax_ap.plot(epochs, [100 * v for v in box], marker='o', label='box AP')
    ax_ap.plot(epochs, [100 * v for v in mask], marker='s', label='mask AP')
    ax_ap.axhline(100 * untrained[METRICS[0]], color='grey', linestyle='--',
                  label=f'untrained box AP ({100 * untrained[METRICS[0]]:.1f})')
    ax_ap.set(title='validation AP (mmdet CocoMetric)', xlabel='epoch', ylabel='AP (%)',
              ylim=(0, 100))
    ax_ap.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def predict(cfg: Config, checkpoint: Path, indices):
    """(RGB image, ground truth, single-scale prediction, TTA prediction) per index."""
    from mmdet.registry import DATASETS, MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(cfg.model)
        load_checkpoint(detector, str(checkpoint), map_location='cpu', logger='silent')
        detector.eval()
        tta = MODELS.build(dict(cfg.tta_model, module=detector)).eval()
        single = DATASETS.build(cfg.test_dataloader.dataset)
        views = DATASETS.build(dict(cfg.test_dataloader.dataset, pipeline=cfg.tta_pipeline))
    rows = []
    with torch.no_grad():
        for index in indices:
            image = plt.imread(single.get_data_info(index)['img_path'])
            rows.append((image, _truth(single, index, image.shape[:2]),
                         detector.test_step(pseudo_collate([single[index]]))[0].pred_instances,
                         tta.test_step(pseudo_collate([views[index]]))[0].pred_instances))
    return rows


def _truth(dataset, index, shape):
    """Boxes, labels and masks (from the polygons) of an annotated image, original pixels."""
    from mmdet.structures.mask import PolygonMasks
    instances = dataset.get_data_info(index)['instances']
    polygons = [[np.array(part, np.float64) for part in i['mask']] for i in instances]
    masks = PolygonMasks(polygons, *shape).to_ndarray().astype(bool)
    return [i['bbox'] for i in instances], [i['bbox_label'] for i in instances], masks


def draw(ax, image, boxes, labels, masks, names, palette, scores=None):
    overlay = image.astype(np.float32) / (255 if image.dtype == np.uint8 else 1)
    keep = [i for i in range(len(labels)) if scores is None or scores[i] >= SCORE_SHOWN]
    for i in keep:
        colour = palette[int(labels[i])]
        mask = np.asarray(masks[i], bool)
        overlay[mask] = 0.45 * overlay[mask] + 0.55 * colour
    ax.imshow(overlay, interpolation='nearest')
    for i in keep:
        x1, y1, x2, y2 = [float(v) for v in boxes[i]]
        colour = palette[int(labels[i])]
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, lw=1))
        text = names[int(labels[i])] + ('' if scores is None else f' {float(scores[i]):.2f}')
        ax.text(x1, y1, text, fontsize=5, color='white', va='bottom',
                bbox=dict(facecolor=colour, alpha=0.7, pad=0.5, lw=0))
    ax.axis('off')


def plot_predictions(rows, names, path: Path) -> None:
    palette = np.array(plt.get_cmap('tab10').colors[:len(names)])
    fig, axes = plt.subplots(len(rows), 3, figsize=(7.5, 2.5 * len(rows)), squeeze=False)
    for row, (image, (boxes, labels, masks), single, tta) in zip(axes, rows):
        draw(row[0], image, boxes, labels, masks, names, palette)
        for ax, pred in zip(row[1:], (single, tta)):
            draw(ax, image, pred.bboxes, pred.labels, pred.masks.numpy(), names, palette,
                 pred.scores)
    for ax, title in zip(axes[0], ('ground truth', 'single scale',
                                   'multi-scale + flip (TTA)')):
        ax.set_title(title, fontsize=9)
    fig.suptitle(f'predictions with score >= {SCORE_SHOWN}', fontsize=8, y=0.995)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('work_dir')
    parser.add_argument('--tta-dir', help='work dir of tools/test.py --tta '
                        '(default: WORK_DIR/tta)')
    parser.add_argument('--num-images', type=int, default=4)
    args = parser.parse_args(argv)
    work_dir = Path(args.work_dir)
    last = work_dir / 'last_checkpoint'
    if not last.is_file():
        sys.exit(f'error: expected {last} (written by training), found none')
    checkpoint = Path(last.read_text().strip())
    cfg = Config.fromfile(args.config)
    read_checkpoints_weights_only()
    import swin_mm.tta  # noqa: F401  (InstanceSegTTAModel)
    from mmdet.utils import register_all_modules
    register_all_modules()
    train, val = read_training(work_dir)
    tta = read_test_metrics(Path(args.tta_dir) if args.tta_dir else work_dir / 'tta')
    untrained = untrained_metrics(cfg)
    plot_curves(train, val, untrained, work_dir / 'curves.png')
    names = list(cfg.test_dataloader.dataset.metainfo['classes'])
    rows = predict(cfg, checkpoint, range(args.num_images))
    plot_predictions(rows, names, work_dir / 'predictions.png')
    print(f'box AP / mask AP (mmdet CocoMetric, {len(val) and val[-1][0]} epochs): '
          f'single scale {100 * val[-1][1]:.1f} / {100 * val[-1][2]:.1f}, '
          f'multi-scale + flip (--tta) {100 * tta[METRICS[0]]:.1f} / '
          f'{100 * tta[METRICS[1]]:.1f}, untrained {100 * untrained[METRICS[0]]:.1f} / '
          f'{100 * untrained[METRICS[1]]:.1f}; plots in {work_dir}/curves.png and '
          f'{work_dir}/predictions.png')


if __name__ == '__main__':
    main()
