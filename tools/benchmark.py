"""Speed and memory of SwinBackbone against mmdet's SwinTransformer, same weights.

    .venv/bin/python tools/benchmark.py --arch T --sizes 224x224 227x301 512x512 800x1344 \
        --train-size 512x512 --json benchmark.json

For each forward size (eval, no_grad, batch 1) and for the training step (forward +
backward, batch 2, drop_path 0; ours also with ``with_cp=True``) it checks that the outputs
agree, times the implementations A/B-interleaved after warm-up (median and quartiles),
reports peer/ours ratios, the achieved GFLOP/s as a fraction of this machine's float32
matmul peak (measured in the same run), and the peak memory of each step measured in
a fresh process per model (see swin_mm/benchmark/memory.py for the method).
"""
import argparse
import json
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from swin_mm.benchmark.flops import count_flops, matmul_peak_gflops  # noqa: E402
from swin_mm.benchmark.memory import measure_in_subprocess  # noqa: E402
from swin_mm.benchmark.models import ARCHS, arch_kwargs, build, parse_size  # noqa: E402
from swin_mm.benchmark.steps import forward_step, training_step  # noqa: E402
from swin_mm.benchmark.timing import interleaved  # noqa: E402


def _max_difference(model_a, model_b, images) -> float:
    with torch.no_grad():
        outs_a, outs_b = model_a.eval()(images), _in_eval(model_b)(images)
    return max(float((a - b).abs().max()) for a, b in zip(outs_a, outs_b))


def _in_eval(model):
    model.eval()  # mmdet's train() returns None
    return model


def _case(name, steps, args, memory_probes):
    """Time `steps` (dict impl -> step), count FLOPs once, probe memory per impl."""
    flops = count_flops(steps['ours'])
    timing = interleaved(steps, args.repeats, args.warmup)
    result = dict(case=name, gflop=flops / 1e9, impls={})
    for impl, stats in timing.items():
        result['impls'][impl] = dict(stats, gflops=flops / (stats['median_ms'] / 1e3) / 1e9)
    if not args.no_memory:
        for impl, probe in memory_probes.items():
            result['impls'][impl].update(probe())
    return result


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    kwargs = arch_kwargs(args.arch, args.depths)
    peak_before = matmul_peak_gflops()
    models = {'ours': build('ours', kwargs), 'mmdet': build('mmdet', kwargs)}
    ours_cp = build('ours', kwargs, with_cp=True)
    report = dict(arch=args.arch, arch_kwargs={k: list(v) if isinstance(v, tuple) else v
                                               for k, v in kwargs.items()},
                  torch=torch.__version__, threads=torch.get_num_threads(),
                  machine=platform.processor() or platform.machine(),
                  cases=[])

    def probe(impl, size, batch, mode, with_cp=False):
        return lambda: measure_in_subprocess(impl, args.arch, args.depths, size, batch, mode,
                                             with_cp, args.threads)

    for size in args.sizes:
        images = torch.randn(1, 3, *size)
        case = _case(f'forward {size[0]}x{size[1]} b1',
                     {impl: forward_step(model, images) for impl, model in models.items()},
                     args, {impl: probe(impl, size, 1, 'forward') for impl in models})
        case['max_abs_diff'] = _max_difference(models['ours'], models['mmdet'], images)
        report['cases'].append(case)
    images = torch.randn(args.train_batch, 3, *args.train_size)
    steps = {impl: training_step(model, images) for impl, model in models.items()}
    steps['ours_cp'] = training_step(ours_cp, images)
    name = f'train {args.train_size[0]}x{args.train_size[1]} b{args.train_batch}'
    probes = {impl: probe(impl, args.train_size, args.train_batch, 'train') for impl in models}
    probes['ours_cp'] = probe('ours', args.train_size, args.train_batch, 'train', with_cp=True)
    case = _case(name, steps, args, probes)
    case['max_abs_diff'] = _max_difference(models['ours'], models['mmdet'], images)
    report['cases'].append(case)
    # Background load changes during a run: the best of two measurements is the peak.
    report['matmul_peak_gflops'] = max(peak_before, matmul_peak_gflops())
    for case in report['cases']:
        for stats in case['impls'].values():
            stats['fraction_of_peak'] = stats['gflops'] / report['matmul_peak_gflops']
    return report


def format_table(report: dict) -> str:
    """Markdown table: one row per case and implementation, ratios against mmdet."""
    lines = [f"Swin-{report['arch']}, float32, torch {report['torch']}, "
             f"{report['threads']} threads, matmul peak {report['matmul_peak_gflops']:.0f} GFLOP/s",
             '',
             '| case | impl | median ms (q1-q3) | mmdet/impl speed | GFLOP/s (% of peak) '
             '| peak MiB | impl/mmdet memory | max abs diff |',
             '|---|---|---|---|---|---|---|---|']
    for case in report['cases']:
        peer = case['impls']['mmdet']
        for impl, stats in case['impls'].items():
            memory = stats.get('peak_mib')
            relative = None if memory is None else memory / peer['peak_mib']
            lines.append(
                f"| {case['case']} | {impl} | {stats['median_ms']:.0f} "
                f"({stats['q1_ms']:.0f}-{stats['q3_ms']:.0f}) "
                f"| {peer['median_ms'] / stats['median_ms']:.2f}x "
                f"| {stats['gflops']:.0f} ({100 * stats['fraction_of_peak']:.0f}%) "
                f"| {'-' if memory is None else f'{memory:.0f}'} "
                f"| {'-' if relative is None else f'{relative:.2f}'} "
                f"| {case['max_abs_diff']:.1e} |")
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='T', choices=sorted(ARCHS))
    parser.add_argument('--depths', type=lambda s: tuple(int(d) for d in s.split(',')),
                        help='override the depths (e.g. 1,1,1,1 for a smoke run)')
    parser.add_argument('--sizes', nargs='+', type=parse_size,
                        default=[(224, 224), (227, 301), (512, 512), (800, 1344)],
                        help='forward input sizes HxW (batch 1)')
    parser.add_argument('--train-size', type=parse_size, default=(512, 512))
    parser.add_argument('--train-batch', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=7, help='timed runs per impl')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=0, help='0: torch default')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory probes')
    parser.add_argument('--json', help='write the full report here')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.train_batch < 1:
        parser.error('--repeats and --train-batch must be >= 1 and --warmup >= 0')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    report = run(args)
    print(format_table(report))
    if args.json:
        temporary = args.json + '.tmp'
        with open(temporary, 'w') as out:
            json.dump(report, out, indent=2)
        os.replace(temporary, args.json)  # never a half-written report


if __name__ == '__main__':
    main()
