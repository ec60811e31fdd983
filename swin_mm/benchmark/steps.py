"""The two workloads being measured, identical for every implementation."""
from typing import Callable

import torch


def forward_step(model: torch.nn.Module, images: torch.Tensor) -> Callable[[], object]:
    """Inference: eval mode, no autograd."""
    model.eval()

    def run():
        with torch.no_grad():
            return model(images)
    return run


def training_step(model: torch.nn.Module, images: torch.Tensor) -> Callable[[], object]:
    """Forward + backward of a loss over every output; gradients freed as zero_grad does."""
    model.train()

    def run():
        for param in model.parameters():
            param.grad = None
        loss = sum(out.float().mean() for out in model(images))
        loss.backward()
        return loss
    return run
