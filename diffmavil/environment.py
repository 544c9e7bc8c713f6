"""What a measurement ran on: hardware, threads, versions, git commit (for every result).

The one environment module: every result (a pre-training summary, a grid's results and
records, ``diffbench time`` output, a report) carries an ``Environment`` block with these
keys (schema_version 2; results of schema 1 spelled some of them differently and are
migrated on read, see ``bench.migrate``).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from diffmavil.config import Frozen

ENVIRONMENT_SCHEMA_VERSION = 2

_PACKAGES = ("torch", "numpy", "fvcore", "pydantic", "typer", "pandas", "matplotlib")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's answer elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current commit (with '+dirty' for uncommitted changes), or None outside git.

    ``git status`` runs without optional locks: it would otherwise refresh and rewrite the
    index under ``index.lock``, and killed at its timeout (a loaded machine) it left that lock
    behind, failing every later git command in the repository."""
    cwd = cwd or Path(__file__).resolve().parent
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def device_name(device: str | torch.device = "cpu") -> str:
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return cpu_model()


class Environment(Frozen):
    """Where and with what a result was produced."""

    schema_version: Literal[2] = ENVIRONMENT_SCHEMA_VERSION
    date: str = Field(description="UTC, ISO 8601, seconds")
    device: str = Field(description="cpu | cuda")
    device_name: str = Field(description="the GPU's name on cuda, else the CPU model")
    cpu_model: str
    cpu_count: int | None = None
    gpu_name: str | None = None
    torch_threads: int | None = Field(None, description="torch.get_num_threads()")
    interop_threads: int | None = None
    torch_version: str | None = None
    cuda_version: str | None = None
    python: str | None = None
    platform: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    git_commit: str | None = None
    command: str | None = None
    load_average_1m: float | None = None
    tf32_matmul: bool | None = None
    tf32_cudnn: bool | None = None
    float32_matmul_precision: str | None = None


def command_line() -> str:
    """This process's command, its program named without the machine's path
    ("diffbench ablate ...", not "/root/.pyenv/.../bin/diffbench ablate ...")."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program == "-c":
        program = "python -c"
    return " ".join([program, *sys.argv[1:]])


def capture(device: str | torch.device = "cpu") -> Environment:
    """The environment of this process, now."""
    device = torch.device(device)
    cuda = device.type == "cuda" and torch.cuda.is_available()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return Environment(
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        device=device.type,
        device_name=device_name(device),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count(),
        gpu_name=torch.cuda.get_device_name(device) if cuda else None,
        torch_threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
        torch_version=torch.__version__,
        cuda_version=torch.version.cuda,
        python=sys.version.split()[0],
        platform=platform.platform(),
        packages=package_versions(),
        git_commit=git_commit(),
        command=command_line(),
        load_average_1m=round(load[0], 2) if load else None,
        **(tf32_settings() if cuda else {}),
    )


# torch has two APIs for TF32: the legacy flags (``torch.backends.cuda.matmul.allow_tf32``,
# ``torch.backends.cudnn.allow_tf32``, ``torch.get_float32_matmul_precision``) and, from
# torch 2.9, ``fp32_precision`` ("tf32" | "ieee" | "none": inherit from the parent). A
# legacy read raises once the new API set a value the legacy flag does not hold, so it
# is read through the new API where torch has it, the legacy one otherwise.
_TF32_CHAINS = {
    "matmul": ("cuda.matmul", ""),
    "cudnn": ("cudnn.conv", "cudnn", ""),
}
_LEGACY_TF32 = {
    "matmul": lambda: torch.backends.cuda.matmul.allow_tf32,
    "cudnn": lambda: torch.backends.cudnn.allow_tf32,
}


def _precision(path: str) -> str | None:
    """``fp32_precision`` of ``torch.backends.<path>`` (the root for ""), or None where
    this torch has no such setting."""
    node: Any = torch.backends
    for part in filter(None, path.split(".")):
        node = getattr(node, part, None)
    return getattr(node, "fp32_precision", None)


def tf32_enabled(backend: str) -> bool:
    """Whether fp32 ``backend`` work ("matmul" or "cudnn") may run in TF32, whichever API
    set it: the first of the backend's ``fp32_precision`` and its parents that is not
    "none", else the legacy flag (False where even that cannot be read)."""
    for path in _TF32_CHAINS[backend]:
        value = _precision(path)
        if value not in (None, "none"):
            return value == "tf32"
    try:
        return bool(_LEGACY_TF32[backend]())
    except RuntimeError:
        return False


def tf32_settings() -> dict[str, Any]:
    """The TF32 keys of the environment block, read whichever API set them."""
    try:
        precision = torch.get_float32_matmul_precision()
    except RuntimeError:  # the new API set it: the legacy name of what it holds
        precision = "high" if tf32_enabled("matmul") else "highest"
    return {
        "tf32_matmul": tf32_enabled("matmul"),
        "tf32_cudnn": tf32_enabled("cudnn"),
        "float32_matmul_precision": precision,
    }


def environment(device: str | torch.device = "cpu") -> dict[str, Any]:
    """``capture(device)`` as a JSON-ready dict (the block every result file carries)."""
    return capture(device).model_dump(mode="json")
