#!/usr/bin/env python
"""onnxruntime inference of SwinBackbone's dynamic ONNX export against mmdet's
SwinTransformer export (same random weights), at 224x224 and 800x1344.

    python tools/benchmark_export.py [--arch tiny] [--repeats 5] [--threads N]

Ours is exported once with dynamic batch/height/width and run at both sizes. mmdet's
dynamic export runs only where no padding is needed (224x224 here); at 800x1344 it
fails in onnxruntime, so it is exported again, statically at that size. Prints a
markdown table naming the machine; every output is checked against eager first.
"""
import argparse
import os
import tempfile
import time
import warnings

import numpy as np
import onnxruntime
import torch

from swin_mm.commands.export import build_backbone, example_input, export_onnx
from swin_mm.models import ARCH_ZOO, arch_settings
from swin_mm_dev.benchmark.machine import describe

SIZES = ((224, 224), (800, 1344))


def session(path, threads):
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def best_time(sess, images, repeats):
    feed = {sess.get_inputs()[0].name: images}
    outputs = sess.run(None, feed)
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        sess.run(None, feed)
        best = min(best, time.perf_counter() - start)
    return best, outputs


def export_mmdet(model, path, example, dynamic):
    axes = {'images': {0: 'batch', 2: 'height', 3: 'width'}} if dynamic else None
    with torch.no_grad():
        torch.onnx.export(model, (example,), path, dynamo=False, opset_version=17,
                          input_names=['images'], dynamic_axes=axes)


def measure(name, sess, model, images, repeats):
    try:
        seconds, outputs = best_time(sess, images.numpy(), repeats)
    except Exception as err:  # onnxruntime's failure is the finding
        return name, None, f'fails: {str(err).splitlines()[0][:80]}'
    with torch.no_grad():
        expected = model(images)
    diff = max(float(np.abs(o - e.numpy()).max()) for o, e in zip(outputs, expected))
    return name, seconds, f'max abs diff {diff:.1e}'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', choices=sorted(ARCH_ZOO['swin']), default='tiny')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=0,
                        help='onnxruntime threads (0: its default)')
    args = parser.parse_args()
    warnings.filterwarnings('ignore')
    from mmdet.models.backbones import SwinTransformer
    torch.manual_seed(0)
    ours = build_backbone(arguments=arch_settings(args.arch))
    theirs = SwinTransformer(**arch_settings(args.arch))
    theirs.load_state_dict(ours.state_dict())
    theirs.eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ours_path, theirs_path = os.path.join(tmp, 'ours.onnx'), os.path.join(tmp, 'mmdet.onnx')
        export_onnx(ours, ours_path, example_input(ours, batch=1))
        export_mmdet(theirs, theirs_path, torch.randn(1, 3, 224, 224), dynamic=True)
        ours_sess = session(ours_path, args.threads)
        theirs_sess = session(theirs_path, args.threads)
        for height, width in SIZES:
            images = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(1))
            rows.append(((height, width),) + measure('swin_mm, dynamic', ours_sess, ours, images,
                                                    args.repeats))
            found = measure('mmdet, dynamic (traced at 224x224)', theirs_sess, theirs, images,
                            args.repeats)
            rows.append(((height, width),) + found)
            if found[1] is None:
                static_path = os.path.join(tmp, f'mmdet_{height}x{width}.onnx')
                export_mmdet(theirs, static_path, images, dynamic=False)
                rows.append(((height, width),) + measure(
                    f'mmdet, static {height}x{width}', session(static_path, args.threads),
                    theirs, images, args.repeats))
    print(f'{args.arch}, batch 1, onnxruntime {onnxruntime.__version__} CPU, torch '
          f'{torch.__version__}, best of {args.repeats}; machine: {describe(torch.device("cpu"))}')
    print('| input | export | onnxruntime ms | check |')
    print('|---|---|---|---|')
    for (height, width), name, seconds, note in rows:
        ms = '-' if seconds is None else f'{seconds * 1e3:.1f}'
        print(f'| {height}x{width} | {name} | {ms} | {note} |')


if __name__ == '__main__':
    main()
