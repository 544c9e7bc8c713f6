"""pytest-benchmark suite (kept out of the default run by pyproject's ``-m 'not
benchmark_suite'``). Run it with:

    python -m pytest tests/benchmarks -m benchmark_suite -p no:cacheprovider

Threads are pinned (``DIFFBENCH_THREADS``, default: all cores) and recorded in the
benchmark's ``extra_info`` with the CPU model and torch version.
"""

from __future__ import annotations

import os

import pytest
import torch

from bench.timing.device import capture_environment

THREADS = int(os.environ.get("DIFFBENCH_THREADS", os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def pinned_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield THREADS
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def session_thread_count():
    """Overrides tests/conftest.py's reset to the suite's thread count: benchmarks keep
    ``pinned_threads`` for the whole session."""
    yield


@pytest.fixture
def environment() -> dict:
    return capture_environment(torch.device("cpu"), "fp32")
