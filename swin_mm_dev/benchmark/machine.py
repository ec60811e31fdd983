"""What the figures were measured on: speed-ups differ by CPU vendor and GPU model."""
import os
import platform

import torch


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        with open('/proc/cpuinfo') as info:
            for line in info:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device) -> str:
    """e.g. 'AMD EPYC 9R14, 2 cores' or 'NVIDIA H200 (host: AMD EPYC 9R14, 16 cores)'."""
    host = f'{cpu_model()}, {os.cpu_count()} cores'
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)} (host: {host})'
    return host
