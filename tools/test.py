"""Evaluate a checkpoint with the config's test dataloader and evaluator.

    python tools/test.py CONFIG CHECKPOINT [--tta] [--work-dir DIR] [--cfg-options k=v ...]
    tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [same options]   # distributed
--tta wraps the model in the config's tta_model and tests with its tta_pipeline
(multi-scale + flip for the ADE20K configs).
"""
import argparse

from mmengine.config import DictAction

from swin_mm.runner_setup import (build_runner, fit_to_machine, load_config, set_local_rank,
                                  use_tta)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a checkpoint with an OpenMMLab config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the metrics log goes '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. test_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    set_local_rank(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    cfg.load_from = args.checkpoint
    if args.tta:
        use_tta(cfg)
    changes = fit_to_machine(cfg)
    build_runner(cfg, changes).test()


if __name__ == '__main__':
    main()
