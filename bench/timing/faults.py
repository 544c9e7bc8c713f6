"""Planted faults, for the tests and ``diffbench check`` on machines where the real fault
cannot happen: a CPU never raises CUDA's out-of-memory error, so the paths that handle one
(``diffbench time --max-batch-fits``, the projection's memory probe) are exercised by
planting it. ``DIFFBENCH_PLANT_OOM_AT_BATCH=N``: a probed step at batch N or larger raises
``torch.OutOfMemoryError`` (read at every call, inherited by child processes). Unset, the
hooks do nothing."""

from __future__ import annotations

import os

import torch

PLANT_OOM = "DIFFBENCH_PLANT_OOM_AT_BATCH"


def planted_out_of_memory(batch: int) -> None:
    """Raise the planted out-of-memory error for ``batch`` (nothing unless planted)."""
    value = os.environ.get(PLANT_OOM)
    if value and batch >= int(value):
        raise torch.OutOfMemoryError(f"planted: batch {batch} >= {value} ({PLANT_OOM})")
