"""Peak memory per row of ``diffbench time``: reset before each of a task's timed calls and
read after it, so that a row reports its own task's peak, not the largest of every task of
the interleaved run (variants, peer, compiled copies). On a CPU the peak is the process's
resident high-water mark, reset between calls (``/proc/self/clear_refs``)."""

from __future__ import annotations

import mmap

import pytest
import torch

from bench.requests import TimeRequest
from bench.timing import benchmark
from bench.timing.device import PeakMemory, TaskPeaks
from bench.timing.harness import run_interleaved

BIG_MB = 256

pytestmark = pytest.mark.skipif(
    not PeakMemory(torch.device("cpu")).resettable, reason="needs a resettable peak (Linux)"
)


def _touch(megabytes: int) -> None:
    """Make the process's resident set grow by ``megabytes`` for a moment: every page of a
    fresh anonymous map written. (Not a tensor: malloc may hand back a freed block that an
    earlier test in this worker left resident, and the resident set would not grow.)"""
    size = megabytes * 2**20
    with mmap.mmap(-1, size) as block:
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        assert block[size - mmap.PAGESIZE] == 1


def test_each_task_reports_its_own_peak():
    def big(timer) -> None:
        with timer.region("call"):
            _touch(BIG_MB)

    def small(timer) -> None:
        with timer.region("call"):
            pass

    peaks = TaskPeaks(torch.device("cpu"))
    run_interleaved({"big": big, "small": small}, warmup=0, repeats=2, memory=peaks)
    assert set(peaks.peaks) == {"big", "small"}
    big_mb, small_mb = peaks.peaks["big"].allocated_mb, peaks.peaks["small"].allocated_mb
    assert big_mb - small_mb > 0.8 * BIG_MB, (big_mb, small_mb)
    assert peaks.peaks["small"].kind == "process_vm_hwm"


class _HungryComponent(benchmark.ComponentPass):
    """A component pass that also holds BIG_MB while it runs."""

    def __call__(self, timer) -> None:
        _touch(BIG_MB)
        super().__call__(timer)


def test_time_rows_carry_the_peak_of_their_own_task(monkeypatch, one_thread):
    monkeypatch.setattr(benchmark, "ComponentPass", _HungryComponent)
    request = TimeRequest(
        preset="tiny", batch_size=2, repeats=2, warmup=1, matmul_repeats=1, threads=1
    )
    rows = benchmark.run_time_benchmark(request).rows
    step = next(r for r in rows if r.kind == "step" and r.phase == "step")
    components = [r for r in rows if r.kind == "component"]
    assert components and all(
        r.peak_memory_mb - step.peak_memory_mb > 0.8 * BIG_MB for r in components
    ), (step.peak_memory_mb, [r.peak_memory_mb for r in components])
    assert {r.peak_memory_kind for r in rows} == {"process_vm_hwm"}
    compared = next(r for r in rows if r.kind == "components_sum")
    assert compared.peak_memory_mb == max(r.peak_memory_mb for r in [step, *components])
