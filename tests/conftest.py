import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)
    yield


@pytest.fixture(autouse=True, scope="session")
def _prime_cpu_kernels():
    """torch float32 actors are the reference of many tests: settle oneMKL's kernel choice
    on one thread before any multi-threaded call (robolearn/networks.py: prime_cpu_kernels)."""
    from robolearn.networks import prime_cpu_kernels

    prime_cpu_kernels()
    yield
