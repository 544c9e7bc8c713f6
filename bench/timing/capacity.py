"""The largest batch whose train step fits on the device (``diffbench time
--max-batch-fits``): batch sizes doubled from the start until a step runs out of memory,
then bisected between the largest that fit and the smallest that did not.

A probe is two train steps (the second one with the optimizer's state, as in training) of
the request's model at one batch size, on one model compiled once when asked (a fresh
optimizer per probe, freed with it). Only ``torch.OutOfMemoryError`` counts as "does not
fit": any other error (a CUDA launch failure, a shape error) is raised as it is. After an
out-of-memory error the probe's tensors are freed and the allocator's cache emptied
before the next probe.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.requests import TimeRequest
from bench.timing.device import MemoryReading, PeakMemory, on_device
from bench.timing.faults import planted_out_of_memory
from bench.timing.tasks import TimedTrainStep, maybe_compile
from diffmavil.config import make_config
from diffmavil.inputs import random_inputs
from diffmavil.model import DiffMAViL

MAX_BATCH_LIMIT = 4096  # the search stops here ("at least" the limit)


@dataclass(frozen=True)
class BatchSearch:
    """``largest``: the largest batch that fit (0: not even 1); ``limit_reached``: every
    probe up to the limit fit; ``probes``: (batch, fit) in the order probed."""

    largest: int
    limit_reached: bool
    probes: tuple[tuple[int, bool], ...]


def largest_batch(fits: Callable[[int], bool], start: int, limit: int) -> BatchSearch:
    """Doubling from ``start`` (at most ``limit``), then bisection."""
    probes: list[tuple[int, bool]] = []

    def probe(batch: int) -> bool:
        probes.append((batch, fits(batch)))
        return probes[-1][1]

    good, bad = 0, None
    if probe(start):
        good = start
        while good < limit:
            batch = min(2 * good, limit)
            if not probe(batch):
                bad = batch
                break
            good = batch
    else:
        bad = start
    while bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        if probe(middle):
            good = middle
        else:
            bad = middle
    return BatchSearch(good, bad is None, tuple(probes))


class StepProbe:
    """Whether two train steps of ``variant`` fit at a batch size, and their peak memory."""

    def __init__(self, request: TimeRequest, variant: str, device: torch.device) -> None:
        self.request, self.device = request, device
        self.config = make_config(request.preset, variant, dict(request.overrides))
        torch.manual_seed(request.seed)
        with torch.device(device):
            self.model = DiffMAViL(self.config)
        maybe_compile(self.model, request.compile)
        self.meter = PeakMemory(device)
        self.peaks: dict[int, MemoryReading] = {}

    def __call__(self, batch: int) -> bool:
        try:
            self.peaks[batch] = self._two_steps(batch)
            return True
        except torch.OutOfMemoryError:
            pass  # leave the handler first: its traceback holds the probe's tensors
        self.model.zero_grad(set_to_none=True)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return False

    def _two_steps(self, batch: int) -> MemoryReading:
        request = self.request
        self.meter.reset()
        planted_out_of_memory(batch)
        audio, video = random_inputs(self.config, batch, self.device, request.seed)
        step = TimedTrainStep(
            self.model, audio, video, request.mask_ratio, dtype=request.dtype,
            compile=request.compile,
        )  # fmt: skip
        for _ in range(2):
            step.run(lambda _name: contextlib.nullcontext())
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return self.meter.read()


def max_batch_rows(request: TimeRequest, limit: int = MAX_BATCH_LIMIT) -> list[dict]:
    """One row per variant: the largest batch that fits, the probes, the peak memory at
    the largest batch (what the peak includes: ``peak_memory_kind``)."""
    if request.threads is not None:
        torch.set_num_threads(request.threads)
    device = torch.device(request.device)
    rows = []
    with on_device(device):
        for variant in request.variants:
            probe = StepProbe(request, variant, device)
            found = largest_batch(probe, request.batch_size, limit)
            peak = probe.peaks.get(found.largest)
            rows.append(
                {
                    "kind": "max_batch",
                    "variant": variant,
                    "preset": request.preset,
                    "device": str(device),
                    "dtype": request.dtype,
                    "compile": request.compile,
                    "mask_ratio": f"{request.mask_ratio[0]},{request.mask_ratio[1]}",
                    "largest_batch": found.largest,
                    "limit_reached": found.limit_reached,
                    "probes": [{"batch": b, "fits": ok} for b, ok in found.probes],
                    "peak_memory_mb": None if peak is None else round(peak.allocated_mb, 1),
                    "peak_reserved_mb": None if peak is None else peak.reserved_mb,
                    "peak_memory_kind": None if peak is None else peak.kind,
                }
            )
    return rows
