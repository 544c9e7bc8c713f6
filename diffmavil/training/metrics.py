"""What a pre-training run records per step: the model FLOPs of the steps taken, the logged
scalars (read from the device at once), the metrics row, ``metrics.jsonl`` with TensorBoard
scalars, and whether the data pipeline bounded the run."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from diffmavil.atomic import atomic_write_text
from diffmavil.config import COMPONENTS, ModelConfig
from diffmavil.flops import model_flops
from diffmavil.schedules import StepPlan


@lru_cache(maxsize=4096)
def step_flops(config: ModelConfig, mask_ratio: tuple[float, float], batch: int) -> tuple:
    """(total model FLOPs fwd+bwd, {component: fwd+bwd}) of one step (cached per shape)."""
    breakdown = model_flops(config, mask_ratio, batch)
    per_component = {c: breakdown.forward[c] + breakdown.backward[c] for c in COMPONENTS}
    return breakdown.total, per_component


class MetricsLog:
    """metrics.jsonl (append, flushed per row) plus TensorBoard scalars (rank 0 only)."""

    def __init__(self, run_dir: Path, start_step: int, enabled: bool) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        if start_step > 0 and self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] < start_step
            ]
            atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))
        elif self.path.exists():
            self.path.unlink()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(
            log_dir=str(run_dir / "tb"), purge_step=start_step if start_step > 0 else None
        )
        self._handle = self.path.open("a")

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._handle.write(json.dumps(row) + "\n")
        self._handle.flush()
        assert self.writer is not None
        for key, value in row.items():
            if isinstance(value, (int, float)) and key != "step":
                self.writer.add_scalar(key.replace(".", "/"), value, row["step"])

    def close(self) -> None:
        if self.enabled:
            self._handle.close()
            assert self.writer is not None
            self.writer.close()


def read_scalars(
    loss: torch.Tensor,
    output: Any,
    grad_norm: torch.Tensor | None,
    non_finite: torch.Tensor | None = None,
) -> dict[str, float]:
    """A step's logged scalars, read from the device together: "loss", "loss.<term>",
    "grad_norm" (with clipping) and "non_finite" (when given), stacked into one tensor and
    read with one ``tolist`` (a read per scalar waits for the device once per scalar)."""
    named = {"loss": loss, **{f"loss.{name}": value for name, value in output.losses.items()}}
    if grad_norm is not None:
        named["grad_norm"] = grad_norm
    if non_finite is not None:
        named["non_finite"] = non_finite
    values = torch.stack([value.detach().float().reshape(()) for value in named.values()])
    return dict(zip(named, values.tolist(), strict=True))


# The data pipeline bounds a run when its batches took at least as long as the compute
# (waiting for them, with DataLoader workers; making them, with num_workers=0): then data,
# not the model, is at least half the wall-clock.
DATA_BOUND_RATIO = 1.0


def data_bound(data_seconds: float, compute_seconds: float) -> dict[str, Any]:
    """Summary fields: data_to_compute_ratio (data seconds / compute seconds) and
    data_bound (whether that ratio is at least ``DATA_BOUND_RATIO``)."""
    ratio = data_seconds / max(compute_seconds, 1e-9)
    return {"data_to_compute_ratio": ratio, "data_bound": ratio >= DATA_BOUND_RATIO}


class StepTotals:
    """Samples, steps and model FLOPs of the steps actually taken."""

    def __init__(self) -> None:
        self.steps = 0
        self.samples = 0
        self.flops = 0
        self.last_step_flops = 0
        self.by_component = dict.fromkeys(COMPONENTS, 0)

    def add(self, step: StepPlan, config: ModelConfig) -> None:
        total, per_component = step_flops(config, step.mask_ratio, step.batch_size)
        self.steps += 1
        self.samples += step.batch_size
        self.flops += total
        self.last_step_flops = total
        for name, value in per_component.items():
            self.by_component[name] += value

    @classmethod
    def restore(cls, done: list[StepPlan], config: ModelConfig) -> StepTotals:
        totals = cls()
        for step in done:
            totals.add(step, config)
        return totals


def metrics_row(
    step, output, loss, lr, grad_norm, compute_seconds, data_seconds, totals, scalars=None
) -> dict:
    """A metrics row; ``scalars``: the step's ``read_scalars`` (read here when not given)."""
    if scalars is None:
        scalars = read_scalars(loss, output, grad_norm)
    flops = totals.last_step_flops
    row: dict[str, Any] = {
        "step": step.step,
        "samples_seen": step.samples_seen + step.batch_size,
        "batch_size": step.batch_size,
        "audio_mask_ratio": step.mask_ratio[0],
        "video_mask_ratio": step.mask_ratio[1],
        "lr": lr,
        "loss": scalars["loss"],
        **{f"loss.{name}": scalars[f"loss.{name}"] for name in output.losses},
        "step_flops": flops,
        "cumulative_flops": totals.flops,
        "compute_seconds": compute_seconds,
        "data_seconds": data_seconds,
        "samples_per_second": step.batch_size / max(compute_seconds + data_seconds, 1e-9),
        "achieved_flops_per_second": flops / max(compute_seconds, 1e-9),
    }
    if grad_norm is not None:
        row["grad_norm"] = scalars["grad_norm"]
    return row


def last_losses(run_dir: Path) -> dict[str, float]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return {}
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        return {}
    row = json.loads(lines[-1])
    return {k: v for k, v in row.items() if k == "loss" or k.startswith("loss.")}
