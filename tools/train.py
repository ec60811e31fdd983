"""Train a detector or segmentor from a config (the config's default_scope decides which).

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] [--cfg-options k=v ...]
    tools/dist_train.sh CONFIG NUM_PROCESSES [same options]   # distributed
Without CUDA, distributed runs use gloo and CPU processes (see swin_mm_dev.runner_setup).
With --resume (when the work dir holds a checkpoint) or load_from, Pretrained init_cfgs
are skipped: the checkpoint replaces those weights anyway.
"""
from swin_mm_dev.runner_setup import (build_runner, fit_to_machine, load_config, one_line_errors,
                                  parse_tool_args, process_group_released,
                                  skip_pretrained_init_when_loading, tool_parser, use_amp)
from swin_mm_dev.resume import die_with_launcher, prepare_resumable_run


def main(argv=None):
    parser = tool_parser('Train a model from an OpenMMLab config')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (float16 autocast; needs a GPU)')
    args = parse_tool_args(parser, argv)
    die_with_launcher()
    with one_line_errors():
        cfg = load_config(args.config, args.work_dir, args.cfg_options, args.launcher)
        cfg.resume = args.resume
        changes = prepare_resumable_run(cfg)
        if args.amp:
            use_amp(cfg)
        changes += skip_pretrained_init_when_loading(cfg)
        changes += fit_to_machine(cfg, training=True)
        with process_group_released():
            build_runner(cfg, changes).train()


if __name__ == '__main__':
    main()
