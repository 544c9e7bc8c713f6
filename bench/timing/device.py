"""What a timing ran on: device, CPU model / GPU name, versions, threads, TF32 (set on
purpose, read through either of torch's APIs); the measured matmul reference rate, the
datasheet peaks for MFU (``bench.timing.gpus``), peak memory."""

from __future__ import annotations

import contextlib
import os
import resource
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.timing.gpus import peak_tflops
from diffmavil.environment import environment, tf32_enabled, tf32_settings

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}
DEVICES: tuple[str, ...] = ("cpu", "cuda")


def gpu_name(device: torch.device) -> str | None:
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(device)


def on_device(device: torch.device) -> AbstractContextManager[Any]:
    """``torch.cuda.device(device)`` on CUDA (the current device is the one the work runs
    on, so that nothing defaults to GPU 0 for ``cuda:1``), nothing elsewhere."""
    device = torch.device(device)
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


# --------------------------------------------------------------------------------- TF32
# Read through both of torch's TF32 APIs by the model library's environment block
# (``diffmavil.environment.tf32_settings``, also imported here); set here, on purpose.


def apply_tf32(device: torch.device, enabled: bool) -> None:
    """Allow TF32 for fp32 matmuls and cuDNN on CUDA, or forbid it (``--tf32``/
    ``--no-tf32``; recorded in the environment block), nothing on a CPU. Set through the
    legacy flags, which every reader (``diffmavil.environment`` too) reads without error
    and which the new API reads back."""
    if torch.device(device).type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


# ----------------------------------------------------------------------- peaks and MFU
def mfu_peak(name: str | None, dtype: str) -> tuple[float | None, str]:
    """(datasheet peak FLOP/s, label) of a GPU for ``dtype`` ("bf16" or "fp32"; fp32 at
    the TF32 peak when TF32 matmuls are allowed, what the hardware runs); without a peak
    the label says why ("unknown device (<name>)", "no bf16 peak (T4)", "not a GPU")."""
    key = "tf32" if dtype == "fp32" and tf32_enabled("matmul") else dtype
    peak, label = peak_tflops(name, key)
    return (None if peak is None else peak * 1e12), label


def datasheet_peak_flops(name: str | None, dtype: str) -> float | None:
    """Datasheet peak FLOP/s of a GPU for ``dtype``, or None (see ``mfu_peak``)."""
    return mfu_peak(name, dtype)[0]


def capture_environment(device: torch.device, dtype: str) -> dict[str, Any]:
    """The environment block (``diffmavil.environment``, one spelling of every key) plus the
    measurement's dtype; on CUDA the TF32 keys read whichever API set them (where the new
    one did, the block's GPU keys are filled here: its own legacy read would raise)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return {**environment(device), "dtype": dtype}
    try:
        block = environment(device)
    except RuntimeError:  # a legacy TF32 read after the new API set it
        name = torch.cuda.get_device_name(device)
        block = {**environment("cpu"), "device": "cuda", "device_name": name, "gpu_name": name}
    return {**block, **tf32_settings(), "dtype": dtype}


def matmul_rate(
    device: torch.device, dtype: str, size: int = 2048, repeats: int = 5, warmup: int = 1
) -> float:
    """FLOP/s of the best of ``repeats`` [size x size] @ [size x size] products (2 size^3
    FLOPs each) in ``dtype`` on ``device``, with the current thread count."""
    from bench.timing import harness

    torch_dtype = DTYPES[dtype]
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=torch_dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=torch_dtype)
    samples = harness.measure(lambda: torch.mm(a, b), warmup=warmup, repeats=repeats, device=device)
    return 2.0 * size**3 / min(samples)


@dataclass(frozen=True)
class MemoryReading:
    """A peak: ``allocated_mb`` (CUDA: the tensors' bytes at their peak, the caching
    allocator's ``max_memory_allocated``; CPU: the process's resident high-water mark),
    ``reserved_mb`` (CUDA: the allocator's reserved segments at their peak, what the
    process holds on the device less the CUDA context and the libraries' workspaces, a
    few hundred MB more; None on a CPU) and ``kind``, naming which."""

    allocated_mb: float
    reserved_mb: float | None
    kind: str

    def max(self, other: MemoryReading) -> MemoryReading:
        reserved = [r for r in (self.reserved_mb, other.reserved_mb) if r is not None]
        return MemoryReading(
            max(self.allocated_mb, other.allocated_mb), max(reserved, default=None), self.kind
        )


_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def process_peak_mb() -> tuple[float, str]:
    """This process's peak resident set: ``VmHWM`` of /proc/self/status on Linux (the
    memory map's high-water mark, fresh after exec or a reset). ``ru_maxrss`` is used only
    where VmHWM does not exist: Linux carries it over from the parent across fork and exec,
    and it cannot be reset."""
    if _STATUS.exists():
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0, "process_vm_hwm"
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024.0, "process_max_rss"


class PeakMemory:
    """Peak memory of a measured span, from ``reset()`` to ``read()``: on CUDA the
    allocator's peaks of ``device`` (allocated and reserved); on a CPU the process's
    resident high-water mark, reset by writing 5 to /proc/self/clear_refs (Linux >= 4.0;
    ``resettable`` False elsewhere: then the peak is the process's since it started)."""

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self.resettable = self.device.type == "cuda" or (
            _CLEAR_REFS.exists() and os.access(_CLEAR_REFS, os.W_OK) and _STATUS.exists()
        )

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.resettable:
            try:
                _CLEAR_REFS.write_text("5")  # VmHWM := the resident set now
            except OSError:  # a kernel or sandbox that refuses it: the process's peak
                self.resettable = False

    def read(self) -> MemoryReading:
        if self.device.type == "cuda":
            return MemoryReading(
                torch.cuda.max_memory_allocated(self.device) / 2**20,
                torch.cuda.max_memory_reserved(self.device) / 2**20,
                "cuda_max_allocated",
            )
        megabytes, kind = process_peak_mb()
        if not self.resettable:  # the peak since the process started, not since reset()
            kind = "process_max_rss" if kind == "process_vm_hwm" else kind
        return MemoryReading(megabytes, None, kind)

    def read_mb(self) -> tuple[float, str]:
        reading = self.read()
        return reading.allocated_mb, reading.kind


class TaskPeaks:
    """Peak memory per task of an interleaved run (``run_interleaved(memory=...)``): reset
    before each timed call of a task and read after it, the largest over its calls."""

    def __init__(self, device: torch.device) -> None:
        self.meter = PeakMemory(device)
        self.peaks: dict[str, MemoryReading] = {}

    def reset(self) -> None:
        self.meter.reset()

    def record(self, task: str) -> None:
        reading = self.meter.read()
        known = self.peaks.get(task)
        self.peaks[task] = reading if known is None else known.max(reading)
