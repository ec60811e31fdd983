"""Evaluate a checkpoint with the config's test dataloader and evaluator.

    python tools/test.py CONFIG CHECKPOINT [--tta] [--work-dir DIR] [--cfg-options k=v ...]
    tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [same options]   # distributed
--tta wraps the model in the config's tta_model and tests with its tta_pipeline
(multi-scale + flip: mmseg's SegTTAModel for the ADE20K configs, swin_mm.tta's
InstanceSegTTAModel, which merges boxes and masks, for the COCO configs).
"""
from swin_mm_dev.runner_setup import (build_runner, fit_to_machine, load_config, one_line_errors,
                                  parse_tool_args, process_group_released, tool_parser, use_tta)


def main(argv=None):
    parser = tool_parser('Test a checkpoint with an OpenMMLab config')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    args = parse_tool_args(parser, argv)
    with one_line_errors():
        cfg = load_config(args.config, args.work_dir, args.cfg_options, args.launcher)
        cfg.load_from = args.checkpoint
        changes = use_tta(cfg) if args.tta else []
        changes += fit_to_machine(cfg)
        with process_group_released():
            build_runner(cfg, changes).test()


if __name__ == '__main__':
    main()
