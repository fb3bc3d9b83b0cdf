"""Fixtures shared by the Python tests."""
import os
import uuid

import pytest


@pytest.fixture
def ring_path():
    """A fresh /dev/shm path for a shared ring, removed afterwards."""
    path = f"/dev/shm/tracer-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield path
    if os.path.exists(path):
        os.unlink(path)
