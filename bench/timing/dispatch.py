"""ATen operator calls per train step, by phase.

A small model on a CPU (or any model on a GPU in eager mode) is often bound by the cost of
each operator call, not by its FLOPs: two variants with the same call count take about
the same time whatever their FLOPs. ``count_step_ops`` counts the calls that reach the
dispatcher below autograd (a ``TorchDispatchMode``): every forward, backward and optimizer
operator, views included, once per call; nothing is timed while it counts.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

from diffmavil.training.step import Region


class OpCounter(TorchDispatchMode):
    """Counts ATen operator calls under the current ``phase``."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = "other"
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None) -> Any:
        self.counts[self.phase] += 1
        return func(*args, **(kwargs or {}))

    @contextlib.contextmanager
    def region(self, name: str) -> Iterator[None]:
        """Count the calls inside as phase ``name`` (a ``Region`` for the train step)."""
        outer, self.phase = self.phase, name
        try:
            yield
        finally:
            self.phase = outer


def count_step_ops(run: Callable[[Region], None]) -> dict[str, int]:
    """{phase: ATen calls} of one call of ``run(region)`` (``TimedTrainStep.run``): the
    phases its regions name ("forward", "backward", "optimizer"), "other" for calls
    outside them, and "step", their sum."""
    counter = OpCounter()
    with counter:
        run(counter.region)
    counts = dict(counter.counts)
    counts["step"] = sum(counter.counts.values())
    return counts
