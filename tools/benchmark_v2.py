"""Speed and memory of SwinV2Backbone against mmpretrain's and timm's SwinTransformerV2,
same weights, one run.

    .venv/bin/python tools/benchmark_v2.py --sizes 512x512 800x1344 --train-size 512x512 \
        --repeats 3 --json benchmark_v2.json

SwinV2-T at window 8 everywhere (swin_mm_dev/benchmark/models_v2.py). mmpretrain with
``pad_small_map=True`` (the same function at every size: it pads before the roll and
never shrinks windows); timm built for each size with ``always_partition=True`` (never
shrinks windows), plus output norms as the OpenMMLab backbones have. For each forward
size (eval, no_grad, batch 1) it reports each peer's largest difference from our
outputs and times all three A/B-interleaved after one warm-up (median and quartiles);
the training step (forward + backward, batch 2, drop_path 0) is timed the same way and
its peak memory measured in a fresh process per model (swin_mm_dev/benchmark/memory.py).
timm pads after the cyclic shift (timm#2438): its outputs agree with ours only where
every stage map is a window multiple (512x512 at window 8, not 800x1344); the row says
so. The report names the CPU it ran on.
"""
import argparse
import json
import subprocess
import sys

import torch

from swin_mm_dev.benchmark import machine
from swin_mm_dev.benchmark.memory import peak_step_memory_mib
from swin_mm_dev.benchmark.models import parse_size
from swin_mm_dev.benchmark.models_v2 import IMPLEMENTATIONS_V2, build_v2
from swin_mm_dev.benchmark.steps import forward_step, training_step
from swin_mm_dev.benchmark.timing import interleaved

PEERS = IMPLEMENTATIONS_V2[1:]
# Largest difference from our outputs that counts as the same function (float32).
SAME_FUNCTION = 1e-4


def measure_memory(impl: str, arch: str, window: int, size, batch: int) -> dict:
    """Peak memory of the training step of `impl`, in a fresh process."""
    command = [sys.executable, __file__, '--memory-child', impl, '--arch', arch,
               '--window', str(window), '--train-size', f'{size[0]}x{size[1]}',
               '--batch', str(batch)]
    return json.loads(subprocess.run(command, check=True, capture_output=True,
                                     text=True).stdout.strip().splitlines()[-1])


def forward_row(arch: str, window: int, size, repeats: int) -> dict:
    models = build_v2(arch=arch, window=window, img_size=size)
    images = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    steps = {impl: forward_step(model, images) for impl, model in models.items()}
    outputs = {impl: step() for impl, step in steps.items()}
    diffs = {peer: max(float((a - b).abs().max())
                       for a, b in zip(outputs['swin_mm'], outputs[peer])) for peer in PEERS}
    times = interleaved(steps, repeats=repeats, warmup=0)
    return dict(step='forward', size=size, batch=1, max_abs_diff=diffs, times=times)


def training_row(arch: str, window: int, size, batch: int, repeats: int) -> dict:
    models = build_v2(arch=arch, window=window, img_size=size)
    images = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(1))
    steps = {impl: training_step(model, images) for impl, model in models.items()}
    times = interleaved(steps, repeats=repeats, warmup=1)
    memory = {impl: measure_memory(impl, arch, window, size, batch)
              for impl in IMPLEMENTATIONS_V2}
    return dict(step='train', size=size, batch=batch, times=times, memory=memory)


def describe(row: dict) -> str:
    ours = row['times']['swin_mm']['median_ms']
    parts = [f"{row['step']:8s} {row['batch']}x{row['size'][0]}x{row['size'][1]}: "
             f"ours {ours:.0f} ms"]
    for peer in PEERS:
        peer_ms = row['times'][peer]['median_ms']
        text = f"{peer} {peer_ms:.0f} ms ({peer_ms / ours:.2f}x)"
        if 'memory' in row:
            text += (f", memory {row['memory'][peer]['peak_mib']:.0f} MiB (ours/"
                     f"{peer} {row['memory']['swin_mm']['peak_mib'] / row['memory'][peer]['peak_mib']:.2f})")
        else:
            diff = row['max_abs_diff'][peer]
            text += f", diff {diff:.1e}" + ('' if diff <= SAME_FUNCTION else ' (not the same function)')
        parts.append(text)
    if 'memory' in row:
        parts[0] += f", memory {row['memory']['swin_mm']['peak_mib']:.0f} MiB"
    return '; '.join(parts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='tiny')
    parser.add_argument('--window', type=int, default=8)
    parser.add_argument('--sizes', nargs='*', type=parse_size, default=[(512, 512), (800, 1344)])
    parser.add_argument('--train-size', type=parse_size, default=(512, 512))
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--json', default=None)
    parser.add_argument('--memory-child', choices=IMPLEMENTATIONS_V2, default=None,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        model, = build_v2((args.memory_child,), args.arch, args.window,
                          img_size=args.train_size).values()
        images = torch.randn(args.batch, 3, *args.train_size)
        print(json.dumps(peak_step_memory_mib(training_step(model, images))))
        return
    rows = [forward_row(args.arch, args.window, size, args.repeats) for size in args.sizes]
    rows.append(training_row(args.arch, args.window, args.train_size, args.batch,
                             args.repeats))
    report = dict(machine=machine.describe(torch.device('cpu')), arch=args.arch,
                  window=args.window, threads=torch.get_num_threads(), rows=rows)
    for row in rows:
        print(describe(row))
    print(report['machine'])
    if args.json:
        with open(args.json, 'w') as out:
            json.dump(report, out, indent=1)


if __name__ == '__main__':
    main()
