"""Snapshots of the pre-trained encoders during a run, for time-to-accuracy curves.

With ``PretrainConfig.snapshot_every`` set (samples), a run saves a snapshot after the
first step at or past each multiple of ``snapshot_every`` samples seen
(``snapshot_steps``), and after its last step. A snapshot holds what a probe or fine-tune
runs (``ENCODE_COMPONENTS``: both modality encoders and the fusion encoder; no decoders,
no contrastive projections, no optimizer state) and where the run stood: samples seen,
step, model FLOPs and timed seconds to that point, and the model config to rebuild it.

Files (``<run_dir>/snapshots/samples-000004096.pt``, named by samples seen) are written
with ``diffmavil.training.checkpoint.save_checkpoint``: a checksum, written to a temporary
file, read back and verified, then renamed. ``<run_dir>/snapshots.json`` (``INDEX_NAME``,
written atomically after each file) lists them for readers without torch::

    {"schema_version": 1, "run_id": "...", "snapshot_every": 4096,
     "snapshots": [{"file": "snapshots/samples-000004096.pt", "samples": 4096,
                    "step": 255, "flops": ..., "wall_clock_seconds": ...,
                    "compute_seconds": ..., "final": false}, ...]}

``step`` is the index of the step after which the snapshot was taken (as in
``metrics.jsonl``), ``samples`` the samples seen after it.

A run writes a step's snapshot before that step's checkpoint, so every snapshot of a
step before a checkpoint is in the index. On resume (``SnapshotWriter``), the index's
snapshots of steps before the checkpoint are kept; files of later steps (written by the
interrupted run after its last checkpoint) are removed and written again when those
steps are run again, with the same contents (training is deterministic); only their
timed seconds follow the resumed run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diffmavil.atomic import atomic_write_json
from diffmavil.config import ModelConfig
from diffmavil.schedules import StepPlan
from diffmavil.training.checkpoint import CorruptCheckpoint, load_verified, save_checkpoint

SNAPSHOT_DIR = "snapshots"
INDEX_NAME = "snapshots.json"
INDEX_SCHEMA_VERSION = 1
SNAPSHOT_KIND = "encoder-snapshot"
SNAPSHOT_FORMAT = 1
# What probes and fine-tunes run (``DiffMAViL.encode``): the snapshot keeps these.
ENCODE_COMPONENTS: tuple[str, ...] = ("audio_encoder", "video_encoder", "fusion")


def snapshot_name(samples: int) -> str:
    """The file name of the snapshot taken at ``samples`` samples seen."""
    return f"samples-{samples:09d}.pt"


def snapshot_steps(plan: Sequence[StepPlan], every: int) -> list[int]:
    """Indices of the steps after which a run snapshots: for each multiple of ``every``,
    the first step whose samples seen (after it) reach it, and the last step. A step that
    passes several multiples is one snapshot."""
    if every <= 0:
        raise ValueError(f"snapshot_every must be positive, got {every}")
    steps: list[int] = []
    mark = every
    for step in plan:
        seen = step.samples_seen + step.batch_size
        if seen >= mark:
            steps.append(step.step)
            mark = (seen // every + 1) * every
    if plan and (not steps or steps[-1] != plan[-1].step):
        steps.append(plan[-1].step)
    return steps


def encoder_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state of ``ENCODE_COMPONENTS`` (parameters and persistent buffers), on the CPU."""
    return {
        name: tensor.detach().cpu()
        for name, tensor in model.state_dict().items()
        if name.split(".", 1)[0] in ENCODE_COMPONENTS
    }


def snapshot_payload(
    model: nn.Module,
    config: ModelConfig,
    run_id: str,
    *,
    step: int,
    samples: int,
    flops: int,
    wall_clock_seconds: float,
    compute_seconds: float,
    final: bool,
) -> dict[str, Any]:
    """What a snapshot file holds (before its checksum)."""
    return {
        "kind": SNAPSHOT_KIND,
        "format": SNAPSHOT_FORMAT,
        "run_id": run_id,
        "step": step,
        "samples": samples,
        "flops": int(flops),
        "wall_clock_seconds": float(wall_clock_seconds),
        "compute_seconds": float(compute_seconds),
        "final": final,
        "model_config": config.model_dump(mode="json"),
        "model": encoder_state(model),
    }


def is_snapshot(payload: dict[str, Any]) -> bool:
    return payload.get("kind") == SNAPSHOT_KIND


def load_snapshot(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A verified snapshot's payload; ``CheckpointError`` (one line naming the file) for a
    file that is unsafe, unreadable, fails its checksum or is not a snapshot."""
    payload = load_verified(path, map_location)
    if not is_snapshot(payload):
        raise CorruptCheckpoint(f"{path}: not an encoder snapshot (no kind={SNAPSHOT_KIND!r})")
    return payload


def model_from_snapshot(payload: dict[str, Any]) -> Any:
    """A DiffMAViL of the snapshot's config with its encoders and fusion encoder loaded.

    The decoders and contrastive projections keep their initial weights: probes and
    fine-tunes do not run them (a fine-tune freezes them).
    """
    from diffmavil.model import DiffMAViL

    model = DiffMAViL(ModelConfig.model_validate(payload["model_config"]))
    missing, unexpected = model.load_state_dict(payload["model"], strict=False)
    missing = [name for name in missing if name.split(".", 1)[0] in ENCODE_COMPONENTS]
    if missing or unexpected:
        raise CorruptCheckpoint(
            f"snapshot does not match its model config (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    return model


def read_index(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``snapshots.json``, or None when it has none (or it cannot be read)."""
    path = Path(run_dir) / INDEX_NAME
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(index, dict) or not isinstance(index.get("snapshots"), list):
        return None
    return index


class SnapshotWriter:
    """Writes a run's snapshots and their index (main rank only; other ranks only ask
    ``due``). Built at the start (or resumption) of a run, after ``start_step`` is known."""

    def __init__(
        self,
        run_dir: Path,
        every: int | None,
        plan: Sequence[StepPlan],
        start_step: int,
        run_id: str,
        *,
        main: bool,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.every = every
        self.run_id = run_id
        self.main = main
        self.steps = frozenset(snapshot_steps(plan, every)) if every is not None else frozenset()
        self.last_step = plan[-1].step if plan else -1
        self.entries: list[dict[str, Any]] = []
        if every is not None and main:
            self._prepare(start_step)

    @property
    def enabled(self) -> bool:
        return self.every is not None

    def due(self, step: int) -> bool:
        return step in self.steps

    def _prepare(self, start_step: int) -> None:
        """Keep the index's snapshots of steps before ``start_step`` (a resumed run's
        checkpoint); remove every other snapshot file, then write the index."""
        index = read_index(self.run_dir) if start_step > 0 else None
        if index is not None and index.get("run_id") == self.run_id:
            self.entries = [
                entry
                for entry in index["snapshots"]
                if entry.get("step", start_step) < start_step
                and (self.run_dir / str(entry.get("file"))).is_file()
            ]
        kept = {(self.run_dir / entry["file"]).resolve() for entry in self.entries}
        folder = self.run_dir / SNAPSHOT_DIR
        if folder.is_dir():
            stale = [*folder.glob("samples-*.pt"), *folder.glob(".samples-*.tmp")]
            for path in stale:
                if path.resolve() not in kept:
                    path.unlink(missing_ok=True)
        self._write_index()

    def write(
        self,
        model: nn.Module,
        config: ModelConfig,
        *,
        step: int,
        samples: int,
        flops: int,
        wall_clock_seconds: float,
        compute_seconds: float,
    ) -> None:
        """Save the snapshot of ``step`` and add it to the index (main rank only)."""
        if not self.main:
            return
        name = f"{SNAPSHOT_DIR}/{snapshot_name(samples)}"
        final = step == self.last_step
        save_checkpoint(
            self.run_dir / name,
            snapshot_payload(
                model,
                config,
                self.run_id,
                step=step,
                samples=samples,
                flops=flops,
                wall_clock_seconds=wall_clock_seconds,
                compute_seconds=compute_seconds,
                final=final,
            ),
        )
        self.entries = [entry for entry in self.entries if entry["file"] != name]
        self.entries.append(
            {
                "file": name,
                "samples": samples,
                "step": step,
                "flops": int(flops),
                "wall_clock_seconds": wall_clock_seconds,
                "compute_seconds": compute_seconds,
                "final": final,
            }
        )
        self._write_index()

    def _write_index(self) -> None:
        atomic_write_json(
            self.run_dir / INDEX_NAME,
            {
                "schema_version": INDEX_SCHEMA_VERSION,
                "run_id": self.run_id,
                "snapshot_every": self.every,
                "snapshots": sorted(self.entries, key=lambda entry: entry["step"]),
            },
        )
