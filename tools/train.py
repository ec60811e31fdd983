"""Train a detector or segmentor from a config (the config's default_scope decides which).

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--cfg-options k=v ...]
    tools/dist_train.sh CONFIG NUM_PROCESSES [same options]   # distributed
Without CUDA, distributed runs use gloo and CPU processes (see swin_mm.runner_setup).
"""
import argparse

from mmengine.config import DictAction

from swin_mm.runner_setup import build_runner, fit_to_machine, load_config, set_local_rank


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model from an OpenMMLab config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    set_local_rank(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    cfg.resume = args.resume
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    changes = fit_to_machine(cfg)
    build_runner(cfg, changes).train()


if __name__ == '__main__':
    main()
