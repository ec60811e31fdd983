"""The two workloads being measured, identical for every implementation.

Each step waits for the device to finish (CUDA runs asynchronously), and runs under
autocast when a lower-precision dtype is asked for, as mixed-precision training does.
"""
import contextlib
from typing import Callable, Optional

import torch


def _precision(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def finish(device: torch.device) -> None:
    """Wait for queued device work (CUDA runs asynchronously), so a clock reads the work."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def forward_step(model: torch.nn.Module, images: torch.Tensor,
                 dtype: Optional[torch.dtype] = None) -> Callable[[], object]:
    """Inference: eval mode, no autograd."""
    model.eval()

    def run():
        with torch.no_grad(), _precision(images.device, dtype):
            outputs = model(images)
        finish(images.device)
        return outputs
    return run


def training_step(model: torch.nn.Module, images: torch.Tensor,
                  dtype: Optional[torch.dtype] = None) -> Callable[[], object]:
    """Forward + backward of a loss over every output; gradients freed as zero_grad does."""
    model.train()

    def run():
        for param in model.parameters():
            param.grad = None
        with _precision(images.device, dtype):
            loss = sum(out.float().mean() for out in model(images))
        loss.backward()
        finish(images.device)
        return loss
    return run
