"""Train a detector or segmentor from a config (the config's default_scope decides which).

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] [--cfg-options k=v ...]
    tools/dist_train.sh CONFIG NUM_PROCESSES [same options]   # distributed
Without CUDA, distributed runs use gloo and CPU processes (see swin_mm.runner_setup).
"""
from swin_mm.runner_setup import (build_runner, fit_to_machine, load_config, parse_tool_args,
                                  process_group_released, tool_parser)


def main(argv=None):
    parser = tool_parser('Train a model from an OpenMMLab config')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    args = parse_tool_args(parser, argv)
    cfg = load_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    cfg.resume = args.resume
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    changes = fit_to_machine(cfg)
    with process_group_released():
        build_runner(cfg, changes).train()


if __name__ == '__main__':
    main()
