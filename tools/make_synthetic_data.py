"""Generate a small deterministic dataset in ADE20K's or COCO's on-disk layout.

    python tools/make_synthetic_data.py ade20k data/synthetic_ade --num-train 200
    -> data/synthetic_ade/ADEChallengeData2016/{images,annotations}/{training,validation}
    python tools/make_synthetic_data.py coco data/coco
    -> data/coco/{train2017,val2017,annotations/instances_*.json,stuffthingmaps/*}
Written to data/ade and data/coco, they are where the recipe configs look: every config
in configs/ then runs on them unchanged (COCO's 80 categories, stuff maps for HTC++).
"""
import argparse
import sys

from swin_mm_dev.synthetic import write_ade20k, write_coco

WRITERS = dict(ade20k=write_ade20k, coco=write_coco)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('format', choices=sorted(WRITERS))
    parser.add_argument('out_dir', help='folder to create (must not exist yet for coco; '
                        'for ade20k, OUT_DIR/ADEChallengeData2016 must not exist)')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=16)
    parser.add_argument('--size', type=int, default=64, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    for name in ('num_train', 'num_val'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1, '
                         f'got {getattr(args, name)}')
    if args.size < 32:
        parser.error(f'--size must be at least 32 pixels, got {args.size}')
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        root = WRITERS[args.format](args.out_dir, args.num_train, args.num_val,
                                    size=args.size, seed=args.seed)
    except FileExistsError as error:
        sys.exit(f'error: {error}')
    print(f'{args.format}: {args.num_train} training + {args.num_val} validation images '
          f'of {args.size}x{args.size} in {root}')


if __name__ == '__main__':
    main()
