"""Speed and memory of SwinV2Backbone against mmpretrain's SwinTransformerV2, same weights.

    .venv/bin/python tools/benchmark_v2.py --sizes 512x512 800x1344 --train-size 512x512 \
        --repeats 3 --json benchmark_v2.json

SwinV2-T at window 8 on both sides; mmpretrain with ``pad_small_map=True`` (the same
function at every size: it pads before the roll and never shrinks windows) and all four
outputs. For each forward size (eval, no_grad, batch 1) it checks that the outputs agree
and times both A/B-interleaved after one warm-up (median and quartiles); the training
step (forward + backward, batch 2, drop_path 0) is timed the same way and its peak memory
measured in a fresh process per model (swin_mm_dev/benchmark/memory.py). The report names
the CPU it ran on. timm's V2 is not included (it pads after the roll: timm#2438).
"""
import argparse
import json
import subprocess
import sys

import torch

from swin_mm import SwinV2Backbone
from swin_mm.models import arch_settings
from swin_mm_dev.benchmark import machine
from swin_mm_dev.benchmark.memory import peak_step_memory_mib
from swin_mm_dev.benchmark.models import parse_size
from swin_mm_dev.benchmark.steps import forward_step, training_step
from swin_mm_dev.benchmark.timing import interleaved

IMPLS = ('swin_mm', 'mmpretrain')


def build_pair(arch: str, window: int, seed: int = 0):
    """{impl: model}: mmpretrain's V2 randomly initialised (post-norms perturbed so that no
    block is the identity), ours loaded from its state dict through the load hook."""
    from mmpretrain.models.backbones import SwinTransformerV2
    torch.manual_seed(seed)
    peer = SwinTransformerV2(arch=arch, img_size=256, window_size=window, drop_path_rate=0.,
                             out_indices=(0, 1, 2, 3), pad_small_map=True)
    peer.init_weights()
    with torch.no_grad():
        for name, param in peer.named_parameters():
            if 'norm' in name:
                param.add_(0.1 * torch.randn_like(param))
    ours = SwinV2Backbone(**arch_settings(arch, 'swinv2'), window_size=window,
                          drop_path_rate=0.)
    ours.load_state_dict(peer.state_dict())
    return {'swin_mm': ours, 'mmpretrain': peer}


def measure_memory(impl: str, arch: str, window: int, size, batch: int) -> dict:
    """Peak memory of the training step of `impl`, in a fresh process."""
    command = [sys.executable, __file__, '--memory-child', impl, '--arch', arch,
               '--window', str(window), '--train-size', f'{size[0]}x{size[1]}',
               '--batch', str(batch)]
    return json.loads(subprocess.run(command, check=True, capture_output=True,
                                     text=True).stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='tiny')
    parser.add_argument('--window', type=int, default=8)
    parser.add_argument('--sizes', nargs='*', type=parse_size, default=[(512, 512), (800, 1344)])
    parser.add_argument('--train-size', type=parse_size, default=(512, 512))
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--json', default=None)
    parser.add_argument('--memory-child', choices=IMPLS, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    models = build_pair(args.arch, args.window)
    if args.memory_child:
        images = torch.randn(args.batch, 3, *args.train_size)
        print(json.dumps(peak_step_memory_mib(training_step(models[args.memory_child], images))))
        return
    rows = []
    for size in args.sizes:
        images = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
        steps = {impl: forward_step(model, images) for impl, model in models.items()}
        outputs = {impl: step() for impl, step in steps.items()}
        diff = max(float((a - b).abs().max())
                   for a, b in zip(outputs['swin_mm'], outputs['mmpretrain']))
        times = interleaved(steps, repeats=args.repeats, warmup=0)
        rows.append(dict(step='forward', size=size, batch=1, max_abs_diff=diff, times=times,
                         ratio=times['mmpretrain']['median_ms'] / times['swin_mm']['median_ms']))
    images = torch.randn(args.batch, 3, *args.train_size,
                         generator=torch.Generator().manual_seed(1))
    steps = {impl: training_step(model, images) for impl, model in models.items()}
    times = interleaved(steps, repeats=args.repeats, warmup=1)
    memory = {impl: measure_memory(impl, args.arch, args.window, args.train_size, args.batch)
              for impl in IMPLS}
    rows.append(dict(step='train', size=args.train_size, batch=args.batch, times=times,
                     ratio=times['mmpretrain']['median_ms'] / times['swin_mm']['median_ms'],
                     memory=memory,
                     memory_ratio=memory['swin_mm']['peak_mib'] / memory['mmpretrain']['peak_mib']))
    report = dict(machine=machine.describe(torch.device('cpu')), arch=args.arch,
                  window=args.window, threads=torch.get_num_threads(), rows=rows)
    for row in rows:
        line = (f"{row['step']:8s} {row['batch']}x{row['size'][0]}x{row['size'][1]}: "
                f"ours {row['times']['swin_mm']['median_ms']:.0f} ms, mmpretrain "
                f"{row['times']['mmpretrain']['median_ms']:.0f} ms, speed-up {row['ratio']:.2f}x")
        if 'memory' in row:
            line += (f", peak memory ours {row['memory']['swin_mm']['peak_mib']:.0f} MiB vs "
                     f"{row['memory']['mmpretrain']['peak_mib']:.0f} MiB "
                     f"({row['memory_ratio']:.2f}x)")
        else:
            line += f", max abs diff {row['max_abs_diff']:.2e}"
        print(line)
    print(report['machine'])
    if args.json:
        with open(args.json, 'w') as out:
            json.dump(report, out, indent=1)


if __name__ == '__main__':
    main()
