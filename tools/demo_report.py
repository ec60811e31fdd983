"""Plots for a finished segmentation run: loss/mIoU curves and predictions next to the truth.

    python tools/demo_report.py CONFIG WORK_DIR [--num-images 6]
writes WORK_DIR/curves.png and WORK_DIR/predictions.png and prints the final mIoU with
the baseline of predicting the most frequent class everywhere (scored by mmseg's own
IoUMetric, so both numbers are on the same scale).
"""
import argparse
import sys
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmseg.apis import inference_model, init_model  # noqa: E402
from mmseg.evaluation import IoUMetric  # noqa: E402
from mmseg.registry import DATASETS  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402

from swin_mm_dev.checkpoint_safety import read_checkpoints_weights_only  # noqa: E402
from swin_mm_dev.run_records import newest_scalars  # noqa: E402


def read_scalars(work_dir: Path):
    """Training losses and validation mIoU by iteration, from the newest run's scalars.json."""
    records = newest_scalars(work_dir)
    train = [(r['step'], r['loss']) for r in records if 'loss' in r]
    val = [(r['step'], r['mIoU']) for r in records if 'mIoU' in r]
    return train, val


def plot_curves(train, val, baseline: float, path: Path) -> None:
    fig, (ax_loss, ax_miou) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(*zip(*train))
    ax_loss.set(title='training loss (decode + 0.4 aux)', xlabel='iteration', ylabel='loss')
    ax_miou.plot(*zip(*val), marker='o', label='validation mIoU')
    ax_miou.axhline(baseline, color='grey', linestyle='--',
                    label=f'most-frequent-class baseline ({baseline:.1f})')
    ax_miou.set(title='validation mIoU (mmseg IoUMetric)', xlabel='iteration',
                ylabel='mIoU (%)', ylim=(0, 100))
    ax_miou.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def colourise(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """RGB image of a label map; ignored pixels (255) are black."""
    rgb = np.zeros(labels.shape + (3,), np.uint8)
    known = labels != 255
    rgb[known] = palette[labels[known]]
    return rgb


def load_validation(cfg: Config):
    register_all_modules()
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    return dataset, np.array(dataset.metainfo['palette'], np.uint8)


def predict(model, dataset, indices):
    """(image RGB, ground truth, prediction) for each index, at the original resolution."""
    rows = []
    for index in indices:
        info = dataset.get_data_info(index)
        sample = dataset[index]['data_samples']
        result = inference_model(model, info['img_path'])
        image = plt.imread(info['img_path'])
        rows.append((image, sample.gt_sem_seg.data[0].numpy(),
                     result.pred_sem_seg.data[0].cpu().numpy()))
    return rows


def plot_predictions(rows, palette, class_names, path: Path) -> None:
    fig, axes = plt.subplots(len(rows), 3, figsize=(6.5, 2.2 * len(rows)), squeeze=False)
    for row, (image, truth, pred) in zip(axes, rows):
        for ax, picture, title in zip(row, (image, colourise(truth, palette),
                                            colourise(pred, palette)),
                                      ('image', 'ground truth', 'prediction')):
            ax.imshow(picture, interpolation='nearest')
            ax.set_title(title, fontsize=9)
            ax.axis('off')
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[i] / 255) for i in range(len(class_names))]
    fig.legend(handles, class_names, loc='lower center', ncol=len(class_names), fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def majority_baseline(dataset) -> float:
    """mIoU, by IoUMetric's own formulas, of predicting the most frequent class everywhere."""
    num_classes = len(dataset.metainfo['classes'])
    truths = [dataset[i]['data_samples'].gt_sem_seg.data[0] for i in range(len(dataset))]
    counts = torch.bincount(torch.cat([t[t != 255] for t in truths]), minlength=num_classes)
    majority = int(counts.argmax())
    totals = [IoUMetric.intersect_and_union(torch.full_like(t, majority), t, num_classes, 255)
              for t in truths]
    sums = [sum(parts) for parts in zip(*totals)]
    metrics = IoUMetric.total_area_to_metrics(*sums, metrics=['mIoU'])
    return float(np.nanmean(metrics['IoU']) * 100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('work_dir')
    parser.add_argument('--num-images', type=int, default=6)
    parser.add_argument('--class-names', nargs='+',
                        help='legend names (default: the dataset\'s class names)')
    args = parser.parse_args(argv)
    work_dir = Path(args.work_dir)
    checkpoints = sorted(work_dir.glob('iter_*.pth'), key=lambda p: int(p.stem.split('_')[1]))
    if not checkpoints:
        sys.exit(f'error: expected iter_*.pth checkpoints in {work_dir}, found none')
    cfg = Config.fromfile(args.config)
    dataset, palette = load_validation(cfg)
    train, val = read_scalars(work_dir)
    baseline = majority_baseline(dataset)
    plot_curves(train, val, baseline, work_dir / 'curves.png')
    read_checkpoints_weights_only()
    model = init_model(cfg, str(checkpoints[-1]), device='cpu')
    rows = predict(model, dataset, range(min(args.num_images, len(dataset))))
    names = args.class_names or dataset.metainfo['classes']
    plot_predictions(rows, palette, names, work_dir / 'predictions.png')
    print(f'final validation mIoU {val[-1][1]:.2f} after {val[-1][0]} iterations '
          f'(most-frequent-class baseline {baseline:.2f}); plots in {work_dir}/curves.png and '
          f'{work_dir}/predictions.png')


if __name__ == '__main__':
    main()
