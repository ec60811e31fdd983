"""Fixtures shared by the tests; plain helpers are in helpers.py."""
import pytest
from mmengine.logging import MMLogger

import helpers
from helpers import LogLines


@pytest.fixture
def images():
    """helpers.images, for tests that take it as a fixture."""
    return helpers.images


@pytest.fixture
def log_lines():
    """What mmengine's current logger emits during the test."""
    handler = LogLines()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
