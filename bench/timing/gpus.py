"""Datasheet peaks of NVIDIA GPUs, for MFU: matched by the tokens of the name torch gives
(``torch.cuda.get_device_name``), the most specific entry first, so that "NVIDIA L40" is
never taken for an L4, nor "NVIDIA H100 NVL" for an SXM H100. An unknown GPU has no peak
and says so ("unknown device (<name>)"): its MFU is left out, never guessed.

Figures: NVIDIA's datasheets (and the Hopper/Ampere/Ada whitepapers where a datasheet
gives only the sparsity figure), dense, without 2:4 sparsity (half the starred figures),
in TFLOP/s, per GPU. "tf32" is the fp32 matmul peak with TF32 allowed, "fp32" without it
(the CUDA-core peak); "bf16" None: no bf16 tensor cores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Peaks:
    """Dense peak TFLOP/s of one GPU model."""

    bf16: float | None
    tf32: float
    fp32: float


# name tokens (space-separated, upper case) -> peaks; a longer key is more specific and
# is tried first whatever its place here
GPU_PEAKS: dict[str, Peaks] = {
    # Blackwell: HGX B200 datasheet, per GPU (BF16 4.5 PF*, TF32 2.2 PF*, FP32 75 TF)
    "B200": Peaks(bf16=2250.0, tf32=1100.0, fp32=75.0),
    # Hopper: H100/H200/H800 datasheets, Hopper whitepaper (SXM5: 989.4 bf16, 494.7 tf32)
    "H100 NVL": Peaks(bf16=835.5, tf32=417.5, fp32=60.0),  # per GPU: 1671*, 835*
    "H200 NVL": Peaks(bf16=835.5, tf32=417.5, fp32=60.0),  # per GPU: 1671*, 835*
    "H100 PCIE": Peaks(bf16=756.0, tf32=378.0, fp32=51.2),
    "H800 PCIE": Peaks(bf16=756.0, tf32=378.0, fp32=51.2),
    "H100": Peaks(bf16=989.4, tf32=494.7, fp32=66.9),  # SXM5 ("H100 80GB HBM3")
    "H200": Peaks(bf16=989.4, tf32=494.7, fp32=66.9),  # SXM
    "H800": Peaks(bf16=989.4, tf32=494.7, fp32=66.9),  # SXM
    "GH200": Peaks(bf16=989.4, tf32=494.7, fp32=66.9),  # the H100 of Grace Hopper
    # Ampere: A100 (SXM4 and PCIe alike), A800, A40, A10 datasheets
    "A100": Peaks(bf16=312.0, tf32=156.0, fp32=19.5),
    "A800": Peaks(bf16=312.0, tf32=156.0, fp32=19.5),
    "A40": Peaks(bf16=149.7, tf32=74.8, fp32=37.4),
    "A10": Peaks(bf16=125.0, tf32=62.5, fp32=31.2),
    # Ada: L4, L40, L40S datasheets; RTX 4090 from the Ada whitepaper (FP32 accumulate)
    "L40S": Peaks(bf16=362.05, tf32=183.0, fp32=91.6),
    "L40": Peaks(bf16=181.05, tf32=90.5, fp32=90.5),
    "L4": Peaks(bf16=121.0, tf32=60.0, fp32=30.3),
    "RTX 4090": Peaks(bf16=165.2, tf32=82.6, fp32=82.6),
    # Volta and Turing: no bf16 or TF32 tensor cores (fp32 matmuls run on CUDA cores)
    "V100 PCIE": Peaks(bf16=None, tf32=14.0, fp32=14.0),
    "V100": Peaks(bf16=None, tf32=15.7, fp32=15.7),  # SXM2
    "T4": Peaks(bf16=None, tf32=8.1, fp32=8.1),
}


def name_tokens(name: str) -> frozenset[str]:
    """'NVIDIA A100-PCIE-40GB' -> {NVIDIA, A100, PCIE, 40GB}."""
    return frozenset(token for token in re.split(r"[\s\-_/]+", name.upper()) if token)


_BY_SPECIFICITY = sorted(GPU_PEAKS, key=lambda key: -len(key.split()))


def gpu_model(name: str | None) -> str | None:
    """The table's entry for a device name (every token of the key is a token of the
    name, the longest key first), or None for a GPU the table does not know."""
    if not name:
        return None
    tokens = name_tokens(name)
    return next((key for key in _BY_SPECIFICITY if set(key.split()) <= tokens), None)


def peak_tflops(name: str | None, key: str) -> tuple[float | None, str]:
    """(dense peak TFLOP/s, label) for ``key`` ("bf16", "tf32" or "fp32"): the label names
    the entry and the peak, or why there is none ("not a GPU", "unknown device (<name>)",
    "no bf16 peak (<entry>)")."""
    if not name:
        return None, "not a GPU"
    model = gpu_model(name)
    if model is None:
        return None, f"unknown device ({name})"
    value = getattr(GPU_PEAKS[model], key)
    if not value:
        return None, f"no {key} peak ({model})"
    return value, f"{model} {key}"
