"""Shared fixtures: models are built once per test session (the mask ratio is a forward
argument, so one model serves every ratio)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
import torch

from diffmavil import VARIANTS, DiffMAViL, make_config
from diffmavil.inputs import random_inputs


def session_threads() -> int:
    """Torch threads for this test process: up to 2, and no more than the cores left to it
    when pytest-xdist runs several workers (2 workers on 2 cores: one thread each, so the
    workers do not oversubscribe the CPU)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(2, (os.cpu_count() or 1) // workers))


SESSION_THREADS = session_threads()
torch.set_num_threads(SESSION_THREADS)
torch.set_flush_denormal(True)

ALL_VARIANTS = list(VARIANTS)

# The slowest test files (seconds of test time each on the 2-core CPU, 2026-11-29), run
# first: pytest-xdist (``--dist loadfile --no-loadscope-reorder``) hands files to idle
# workers in collection order, so the longest go out first and the short ones fill in at
# the end, and both workers finish together. Without this, xdist orders files by their
# number of tests, and a long file with few tests (test_ablate_run) could start last.
SLOWEST_FIRST = (
    "test_ablate_run.py",  # ~125 s
    "test_flops_counters.py",  # ~85 s
    "test_pretrain.py",  # ~70 s
    "test_ablate_reliability.py",  # ~55 s
    "test_data_synthetic.py",  # ~45 s
    "test_checkpoint.py",  # ~43 s
    "test_model.py",  # ~40 s
    "test_whole_run_cli.py",  # ~33 s
    "test_time_to_accuracy.py",  # ~30 s
    "test_peer.py",  # ~24 s
    "test_report.py",  # ~19 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slowest files first (``SLOWEST_FIRST``), the rest after in their own order; the
    order of tests within a file is unchanged."""
    rank = {name: index for index, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def make_inputs(config, batch: int, seed: int = 0, device: str = "cpu"):
    """Random audio [B, T, F] and video [B, C, T, H, W] (``diffmavil.inputs``)."""
    return random_inputs(config, batch, device, seed)


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], timeout: float) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` holds (polled); fail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not ready():
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(autouse=True)
def session_thread_count():
    """Every test starts at the session's thread count: a run whose config sets ``threads``
    (``pretrain`` keeps it) must not leave it to the tests after it on the same worker."""
    yield
    if torch.get_num_threads() != SESSION_THREADS:
        torch.set_num_threads(SESSION_THREADS)


@pytest.fixture
def one_thread():
    """Timing and profiling pin one thread; the session's setting comes back afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, DiffMAViL]:
    """One tiny model per variant, seeded."""
    models = {}
    for variant in ALL_VARIANTS:
        torch.manual_seed(0)
        models[variant] = DiffMAViL(make_config("tiny", variant))
    return models


@pytest.fixture(scope="session")
def meta_models() -> dict[tuple[str, str], DiffMAViL]:
    """base models of every variant on the meta device (no memory, no compute), keyed
    (preset, variant)."""
    models = {}
    with torch.device("meta"):
        for variant in ALL_VARIANTS:
            models[("base", variant)] = DiffMAViL(make_config("base", variant))
    return models
