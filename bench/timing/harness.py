"""Timing discipline: warm-up excluded, many repeats, interleaving, robust statistics.

A *task* is a callable taking a ``RegionTimer``; it wraps the regions it wants timed in
``timer.region(name)``. On CPU a region is timed with ``time.perf_counter`` (the work is
synchronous); on CUDA with a pair of events, resolved after one synchronisation at the end
of each repeat, so no sync sits inside the timed work. Events are recorded on the current
stream of the timer's own device and that device is synchronised (``cuda:1`` is timed on
GPU 1, whatever the current device).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Protocol

import torch

from bench.stats import quantile


@dataclass(frozen=True)
class Stats:
    """Summary of timed samples (seconds). Quartiles interpolate linearly (numpy's default)."""

    n: int
    median: float
    q1: float
    q3: float
    min: float
    max: float
    mean: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        if not samples:
            raise ValueError("no samples to summarise")
        ordered = sorted(samples)
        return cls(
            n=len(ordered),
            median=quantile(ordered, 0.5),
            q1=quantile(ordered, 0.25),
            q3=quantile(ordered, 0.75),
            min=ordered[0],
            max=ordered[-1],
            mean=statistics.fmean(ordered),
        )

    def as_ms(self) -> dict[str, float]:
        """{median_ms, q1_ms, q3_ms, iqr_ms, min_ms, max_ms} rounded to microseconds."""
        values = {**asdict(self), "iqr": self.iqr}
        return {
            f"{k}_ms": round(1e3 * values[k], 3)
            for k in ("median", "q1", "q3", "iqr", "min", "max")
        }


class RegionTimer:
    """Times named regions; ``collect()`` returns {region: [seconds, ...]}."""

    def __init__(self, device: torch.device | str = "cpu", enabled: bool = True) -> None:
        self.device = torch.device(device)
        self.enabled = enabled
        self._cpu: dict[str, list[float]] = defaultdict(list)
        self._events: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []

    @property
    def uses_events(self) -> bool:
        return self.device.type == "cuda"

    @contextmanager
    def region(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        if self.uses_events:
            # on the stream of this timer's device, not of the current device (cuda:1)
            stream = torch.cuda.current_stream(self.device)
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record(stream)
            yield
            end.record(stream)
            self._events.append((name, start, end))
        else:
            began = time.perf_counter()
            yield
            self._cpu[name].append(time.perf_counter() - began)

    def synchronize(self) -> None:
        if self.uses_events:
            torch.cuda.synchronize(self.device)

    def collect(self) -> dict[str, list[float]]:
        """Resolve pending CUDA events (one synchronisation) and return every sample."""
        if self._events:
            self.synchronize()
            for name, start, end in self._events:
                self._cpu[name].append(start.elapsed_time(end) / 1e3)
            self._events.clear()
        return {name: list(values) for name, values in self._cpu.items()}


Task = Callable[[RegionTimer], None]


class TaskMemory(Protocol):
    """Peak memory per task (``bench.timing.device.TaskPeaks``)."""

    def reset(self) -> None: ...

    def record(self, task: str) -> None: ...


def run_interleaved(
    tasks: dict[str, Task],
    *,
    warmup: int,
    repeats: int,
    device: torch.device | str = "cpu",
    progress: Callable[[str], None] | None = None,
    min_seconds: float = 0.0,
    memory: TaskMemory | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Run every task ``warmup`` times untimed, then timed rounds: ``repeats`` of them, and
    more until the timed rounds have lasted ``min_seconds`` (so that a machine whose speed
    drifts over seconds is sampled across its drift, not in one phase of it). ``memory``
    (``bench.timing.device.TaskPeaks``) is reset before each timed call and records the
    task's peak after it (outside the timed regions).

    Within a round the tasks run in a rotating order (round r starts at task r mod n), so
    slow drifts of machine load fall on every task alike. Returns
    {task: {region: [seconds per round]}}; warm-up calls never reach the samples.
    """
    if warmup < 0 or repeats < 1 or min_seconds < 0:
        raise ValueError(
            f"need warmup >= 0, repeats >= 1 and min_seconds >= 0, "
            f"got {warmup}, {repeats}, {min_seconds}"
        )
    names = list(tasks)
    idle = RegionTimer(device, enabled=False)
    for name in names:
        for _ in range(warmup):
            tasks[name](idle)
            if progress:
                progress(f"warm-up {name}")
    timers = {name: RegionTimer(device) for name in names}
    started, round_index = time.perf_counter(), 0
    while round_index < repeats or time.perf_counter() - started < min_seconds:
        shift = round_index % len(names)
        label = (
            f"repeat {round_index + 1}/{repeats}"
            if round_index < repeats
            else f"repeat {round_index + 1} (until {min_seconds:g} s)"
        )
        for name in names[shift:] + names[:shift]:
            if memory is not None:
                memory.reset()
            tasks[name](timers[name])
            timers[name].synchronize()
            if memory is not None:
                memory.record(name)
            if progress:
                progress(f"{label} {name}")
        round_index += 1
    return {name: timer.collect() for name, timer in timers.items()}


def measure(
    function: Callable[[], object],
    *,
    warmup: int,
    repeats: int,
    device: torch.device | str = "cpu",
) -> list[float]:
    """Seconds per call of ``function`` over ``repeats`` timed calls after ``warmup``."""

    def task(timer: RegionTimer) -> None:
        with timer.region("call"):
            function()

    return run_interleaved({"f": task}, warmup=warmup, repeats=repeats, device=device)["f"]["call"]
