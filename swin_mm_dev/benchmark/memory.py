"""Peak memory of one step of one model, measured in a fresh process.

Method (Linux): the child builds the model and input and runs one warm-up step (one-time
caches and thread pools are not the step's cost); it then returns freed heap pages to the
OS (``malloc_trim``), resets the kernel's peak-RSS mark (``/proc/self/clear_refs`` = 5),
reads the resident size as the baseline, runs the step once and reports ``VmHWM -
baseline``: the most memory the step added at any instant, whatever allocated it (the
torch CPU allocator is invisible to tracemalloc). glibc is told to serve every block of
64 KiB or more with mmap (``MALLOC_MMAP_THRESHOLD_``) so freed tensors leave RSS at once
and a reused heap cannot hide a peak. Where clear_refs cannot be written the fallback is
``ru_maxrss`` minus the baseline, an upper bound that may include build-time peaks.
"""
import argparse
import ctypes
import gc
import json
import os
import resource
import subprocess
import sys

import torch

_STATUS = '/proc/self/status'


def _status_kib(field: str) -> int:
    with open(_STATUS) as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not found in {_STATUS}')


def _release_free_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except OSError:
        pass


def _reset_peak() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as clear_refs:
            clear_refs.write('5')
        return True
    except OSError:
        return False


def peak_step_memory_mib(step) -> dict:
    """Run `step` once (after one warm-up) and return the memory it added at its peak."""
    step()
    _release_free_memory()
    exact = _reset_peak()
    baseline = _status_kib('VmRSS')
    step()
    peak = _status_kib('VmHWM') if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(peak_mib=(peak - baseline) / 1024, baseline_mib=baseline / 1024,
                method='VmHWM after clear_refs' if exact else 'ru_maxrss (upper bound)')


def peak_cuda_step_memory_mib(step, device: torch.device) -> dict:
    """CUDA: the caching allocator tracks every tensor, so one process is exact. The
    steps wait for the device themselves (steps.finish)."""
    step()
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    step()
    peak = torch.cuda.max_memory_allocated(device)
    return dict(peak_mib=(peak - baseline) / 2 ** 20, baseline_mib=baseline / 2 ** 20,
                method='torch.cuda.max_memory_allocated')


def measure_in_subprocess(impl: str, arch: str, depths, size, batch: int, mode: str,
                          with_cp: bool = False, threads: int = 0,
                          dtype: str = 'fp32') -> dict:
    """Run this module as a script in a fresh interpreter and return its JSON line."""
    command = [sys.executable, '-m', 'swin_mm_dev.benchmark.memory', '--impl', impl,
               '--arch', arch, '--size', f'{size[0]}x{size[1]}', '--batch', str(batch),
               '--mode', mode, '--threads', str(threads), '--dtype', dtype]
    if depths is not None:
        command += ['--depths', ','.join(map(str, depths))]
    if with_cp:
        command.append('--with-cp')
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536', MALLOC_TRIM_THRESHOLD_='65536')
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f'memory probe {impl}/{mode} failed:\n{done.stderr[-2000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    from .models import DTYPES, arch_kwargs, build, parse_size
    from .steps import forward_step, training_step
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--impl', required=True)
    parser.add_argument('--arch', required=True)
    parser.add_argument('--depths', type=lambda s: tuple(int(d) for d in s.split(',')))
    parser.add_argument('--size', type=parse_size, required=True)
    parser.add_argument('--batch', type=int, required=True)
    parser.add_argument('--mode', choices=('forward', 'train'), required=True)
    parser.add_argument('--with-cp', action='store_true')
    parser.add_argument('--threads', type=int, default=0)
    parser.add_argument('--dtype', choices=sorted(DTYPES), default='fp32')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build(args.impl, arch_kwargs(args.arch, args.depths), with_cp=args.with_cp,
                  img_size=args.size)
    images = torch.randn(args.batch, 3, *args.size)
    make_step = forward_step if args.mode == 'forward' else training_step
    print(json.dumps(peak_step_memory_mib(make_step(model, images, DTYPES[args.dtype]))))


if __name__ == '__main__':
    main()
