"""Speed and memory of SwinBackbone against mmdet's (and optionally timm's) Swin, same weights.

    .venv/bin/python tools/benchmark.py --arch T --sizes 224x224 227x301 512x512 800x1344 \
        --train-size 512x512 --json benchmark.json [--with-timm]
    python tools/benchmark.py --device cuda --dtype bf16 --sizes 800x1344   # on a GPU

For each forward size (eval, no_grad, batch 1) and for the training step (forward +
backward, batch 2, drop_path 0; ours also with ``with_cp=True``) it checks that the outputs
agree, times the implementations A/B-interleaved after warm-up (median and quartiles),
reports peer/ours ratios, the achieved GFLOP/s as a fraction of this machine's float32
matmul peak (measured in the same run), and the peak memory of each step measured in
a fresh process per model on CPU, by the CUDA allocator on a GPU (see
swin_mm_dev/benchmark/memory.py). The report names the CPU or GPU it was measured on.
The max abs diff column is ours against mmdet, and for timm's row timm against ours
(timm computes a different function at some sizes: see swin_mm_dev/benchmark/models.py);
a peer that cannot take an input size gets an "unsupported" row with its reason.
"""
import argparse
import json
import os

import torch

from swin_mm_dev.benchmark import machine
from swin_mm_dev.benchmark.flops import count_flops, matmul_peak_gflops
from swin_mm_dev.benchmark.memory import (measure_in_subprocess,
                                          peak_cuda_step_memory_mib)
from swin_mm_dev.benchmark.models import ARCHS, DTYPES, arch_kwargs, build, parse_size
from swin_mm_dev.benchmark.steps import forward_step, training_step
from swin_mm_dev.benchmark.timing import interleaved


def _runnable(factories, images, dtype):
    """Build each model and run it once in eval on `images`.

    Returns ({impl: model}, {impl: outputs}, {peer: why it cannot take the input}); the
    outputs serve the agreement check, so no model runs this forward twice.
    """
    models, outputs, unsupported = {}, {}, {}
    for impl, factory in factories.items():
        try:
            model = factory().to(images.device)
            outputs[impl] = forward_step(model, images, dtype)()
            models[impl] = model
        except Exception as error:  # noqa: BLE001  (a peer's own size restrictions)
            if impl.startswith('ours'):
                raise
            unsupported[impl] = ' '.join(str(error).strip().splitlines()[:2])
    return models, outputs, unsupported


def _max_difference(outs_a, outs_b) -> float:
    return max(float((a.float() - b.float()).abs().max()) for a, b in zip(outs_a, outs_b))


def _case(name, factories, make_step, images, args, probe):
    """Time every model that takes `images`, count FLOPs once, probe memory per
    implementation, and record each peer's difference to ours."""
    models, outputs, unsupported = _runnable(factories, images, DTYPES[args.dtype])
    steps = {impl: make_step(model, images, DTYPES[args.dtype])
             for impl, model in models.items()}
    flops = count_flops(steps['ours'])
    timing = interleaved(steps, args.repeats, args.warmup)
    result = dict(case=name, gflop=flops / 1e9, impls={}, unsupported=unsupported)
    for impl, stats in timing.items():
        result['impls'][impl] = dict(stats, gflops=flops / (stats['median_ms'] / 1e3) / 1e9)
        if not args.no_memory:
            result['impls'][impl].update(probe(impl, steps[impl]))
    result['max_abs_diff'] = _max_difference(outputs['ours'], outputs['mmdet'])
    if 'timm' in outputs:
        result['impls']['timm']['max_abs_diff'] = _max_difference(outputs['ours'],
                                                                  outputs['timm'])
    return result


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # the same input images in every run
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    kwargs = arch_kwargs(args.arch, args.depths)
    peak_before = matmul_peak_gflops(device, dtype)
    shared = {'ours': build('ours', kwargs), 'mmdet': build('mmdet', kwargs)}
    report = dict(arch=args.arch, arch_kwargs={k: list(v) if isinstance(v, tuple) else v
                                               for k, v in kwargs.items()},
                  torch=torch.__version__, threads=torch.get_num_threads(),
                  device=args.device, dtype=args.dtype, machine=machine.describe(device),
                  cases=[])

    def models_for(size, with_cp=False):
        factories = {impl: (lambda model=model: model) for impl, model in shared.items()}
        if args.with_timm:  # timm builds a model for one input size
            factories['timm'] = lambda: build('timm', kwargs, img_size=size)
        if with_cp:
            factories['ours_cp'] = lambda: build('ours', kwargs, with_cp=True)
        return factories

    def prober(size, batch, mode):
        def probe(impl, step):
            if device.type == 'cuda':
                return peak_cuda_step_memory_mib(step, device)
            return measure_in_subprocess(impl.replace('_cp', ''), args.arch, args.depths, size,
                                         batch, mode, impl.endswith('_cp'), args.threads,
                                         args.dtype)
        return probe

    for size in args.sizes:
        report['cases'].append(_case(
            f'forward {size[0]}x{size[1]} b1', models_for(size), forward_step,
            torch.randn(1, 3, *size, device=device), args, prober(size, 1, 'forward')))
    size, batch = args.train_size, args.train_batch
    report['cases'].append(_case(
        f'train {size[0]}x{size[1]} b{batch}', models_for(size, with_cp=True), training_step,
        torch.randn(batch, 3, *size, device=device), args, prober(size, batch, 'train')))
    # Background load changes during a run: the best of two measurements is the peak.
    report['matmul_peak_gflops'] = max(peak_before, matmul_peak_gflops(device, dtype))
    for case in report['cases']:
        for stats in case['impls'].values():
            stats['fraction_of_peak'] = stats['gflops'] / report['matmul_peak_gflops']
    return report


def format_table(report: dict) -> str:
    """Markdown table: one row per case and implementation, ratios against mmdet."""
    lines = [f"Swin-{report['arch']}, {report['dtype']}, torch {report['torch']}, "
             f"{report['machine']}, {report['threads']} threads, "
             f"{report['dtype']} matmul peak {report['matmul_peak_gflops']:.0f} GFLOP/s",
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
                f"| {stats.get('max_abs_diff', case['max_abs_diff']):.1e} |")
        for impl, reason in case.get('unsupported', {}).items():
            lines.append(f"| {case['case']} | {impl} | unsupported: {reason} "
                         '| - | - | - | - | - |')
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
    parser.add_argument('--with-timm', action='store_true',
                        help="also time timm's SwinTransformer (built per input size)")
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    parser.add_argument('--dtype', default='fp32', choices=sorted(DTYPES),
                        help='fp32, or bf16 autocast (mixed precision)')
    parser.add_argument('--json', help='write the full report here')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.train_batch < 1:
        parser.error('--repeats and --train-batch must be >= 1 and --warmup >= 0')
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f'--device expects cpu or cuda[:N], got {args.device!r}')
    if device.type not in ('cpu', 'cuda'):
        parser.error(f'--device expects cpu or cuda[:N], got {args.device!r}')
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: expected a CUDA device, found none '
                     f'(torch {torch.__version__}, CUDA build: {torch.version.cuda})')
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
