"""Fixtures shared by the tests; plain helpers are in helpers.py."""
import pytest
import torch
from mmengine.logging import MMLogger

from helpers import LogLines


@pytest.fixture
def images():
    def make(batch, height, width, seed=0, channels=3):
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(batch, channels, height, width, generator=gen)
    return make


@pytest.fixture
def log_lines():
    """What mmengine's current logger emits during the test."""
    handler = LogLines()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
