"""Check that a config's param_scheduler reproduces the published learning-rate recipe.

Usage: python tools/check_schedule.py CONFIG [--recipe NAME] [--iters-per-epoch N]
Steps the config's real mmengine schedulers through the whole run with a dummy
optimizer, prints the largest relative difference from the published formula (the one
the config names in its ``schedule_recipe`` field, or --recipe) and exits with status 1
when it exceeds --rtol (2 on bad arguments or a config that names no known recipe).
"""
import argparse
import sys

from mmengine.config import Config
from mmengine.logging import MMLogger

from swin_mm_dev.schedule_check import COCO_ITERS_PER_EPOCH, PUBLISHED, check_schedule, recipe_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--recipe', choices=sorted(PUBLISHED),
                        help="published recipe (default: the config's schedule_recipe)")
    parser.add_argument('--iters-per-epoch', type=int, default=COCO_ITERS_PER_EPOCH,
                        help=f'for epoch-based configs (default {COCO_ITERS_PER_EPOCH}: '
                             f'COCO train2017 at batch 16)')
    parser.add_argument('--rtol', type=float, default=1e-6)
    args = parser.parse_args(argv)
    if args.iters_per_epoch < 1:
        parser.error(f'--iters-per-epoch must be >= 1, got {args.iters_per_epoch}')
    cfg = Config.fromfile(args.config)
    try:
        recipe = args.recipe or recipe_of(cfg)
    except ValueError as error:
        parser.error(f'{error}; pass --recipe')
    # Quiet the optimizer constructor's per-parameter INFO lines.
    MMLogger.get_instance('check_schedule', log_level='WARNING')
    try:
        report = check_schedule(cfg, recipe, args.iters_per_epoch)
    except ValueError as error:
        print(f'MISMATCH {args.config}: {error}')
        return 1
    verdict = 'OK' if report.ok(args.rtol) else 'MISMATCH'
    print(f'{verdict} {args.config} vs {recipe}: {report.iterations} iterations, max relative '
          f'error {report.max_rel_error:.3g} at iteration {report.worst_iteration} '
          f'(config lr {report.config_lr:.6g}, published {report.published_lr:.6g})')
    return 0 if report.ok(args.rtol) else 1


if __name__ == '__main__':
    sys.exit(main())
