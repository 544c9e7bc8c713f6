"""What a timing ran on: device, CPU model / GPU name, versions, threads; the measured
matmul reference rate and datasheet peaks for MFU."""

from __future__ import annotations

import resource
from typing import Any

import torch

from diffmavil.environment import environment

# Dense (no sparsity) peak tensor throughput in TFLOP/s from vendor datasheets, keyed by a
# substring of ``torch.cuda.get_device_name()``. "tf32" is the fp32 matmul peak when TF32
# is allowed, "fp32" when it is not. Order matters: the first matching key wins.
DATASHEET_PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "H100 PCIe": {"bf16": 756.0, "tf32": 378.0, "fp32": 51.2},
    "H100": {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9},  # SXM5
    "A100": {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "L40S": {"bf16": 362.1, "tf32": 183.0, "fp32": 91.6},
    "L4": {"bf16": 121.0, "tf32": 60.0, "fp32": 30.3},
    "A10": {"bf16": 125.0, "tf32": 62.5, "fp32": 31.2},
    "RTX 4090": {"bf16": 165.2, "tf32": 82.6, "fp32": 82.6},
    "V100": {"bf16": 0.0, "tf32": 15.7, "fp32": 15.7},  # no bf16 tensor cores
    "T4": {"bf16": 0.0, "tf32": 8.1, "fp32": 8.1},
}

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}
DEVICES: tuple[str, ...] = ("cpu", "cuda")


def gpu_name(device: torch.device) -> str | None:
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(device)


def tf32_settings() -> dict[str, Any]:
    return {
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def datasheet_peak_flops(name: str | None, dtype: str) -> float | None:
    """Datasheet peak FLOP/s of a GPU for ``dtype`` ("bf16" or "fp32"), or None if unknown.
    fp32 counts at the TF32 peak when TF32 matmuls are allowed (what the hardware runs)."""
    if not name:
        return None
    key = dtype
    if dtype == "fp32" and torch.backends.cuda.matmul.allow_tf32:
        key = "tf32"
    for pattern, peaks in DATASHEET_PEAK_TFLOPS.items():
        if pattern in name and peaks.get(key):
            return peaks[key] * 1e12
    return None


def capture_environment(device: torch.device, dtype: str) -> dict[str, Any]:
    """The environment block (``diffmavil.environment``, one spelling of every key) plus the
    measurement's dtype."""
    return {**environment(device), "dtype": dtype}


def matmul_rate(
    device: torch.device, dtype: str, size: int = 2048, repeats: int = 5, warmup: int = 1
) -> float:
    """FLOP/s of the best of ``repeats`` [size x size] @ [size x size] products (2 size^3
    FLOPs each) in ``dtype`` on ``device``, with the current thread count."""
    from bench.timing.harness import measure

    torch_dtype = DTYPES[dtype]
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=torch_dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=torch_dtype)
    samples = measure(lambda: torch.mm(a, b), warmup=warmup, repeats=repeats, device=device.type)
    return 2.0 * size**3 / min(samples)


class PeakMemory:
    """Peak memory of a measured span: CUDA's max allocated bytes (reset at start), or on
    CPU the process's maximum resident set size (monotone over the process; an upper bound)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def read_mb(self) -> tuple[float, str]:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20, "cuda_max_allocated"
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return kib / 1024.0, "process_max_rss"
