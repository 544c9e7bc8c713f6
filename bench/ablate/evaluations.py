"""A grid run's evaluations after its pre-training and probe, outside its timed wall-clock
(``bench.ablate.task`` calls them): the **curve** (``run.curve``: every snapshot of the run
probed, ``CurvePoint``s) and the **fine-tune** (``run.finetune``: the final snapshot, or a
random-init control, fine-tuned end to end with ``evaluate`` in mode finetune).

The interior snapshots are probed with the curve's probe (``run.probe`` with the curve's
probe seeds); the final snapshot's point is the run's probe (``run.probe``: the final
snapshot holds the encoders of the final checkpoint the probe read). Each evaluation is
stored in the run directory as soon as it finishes, atomically, with the config it ran
(``curve/<snapshot>.json``, ``finetune.json``), and read back instead of run again when the
task runs again (a grid resumed after an interruption): nothing stored is evaluated twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.ablate.datasets import run_probe
from bench.schema import (
    CurvePoint,
    FinetuneMetrics,
    GridRecord,
    ProbeMetrics,
    SnapshotEntry,
    SnapshotIndex,
)
from diffmavil.atomic import atomic_write_json
from diffmavil.config import Frozen

CURVE_DIR = "curve"  # <run_dir>/curve/<snapshot stem>.json: one probed snapshot each
FINETUNE_FILE = "finetune.json"


class CurveError(RuntimeError):
    """A run asked for a curve has no usable snapshot index."""


class StoredEvaluation(Frozen):
    """One evaluation as the run directory keeps it: what ran (the evaluation's config
    identity, the snapshot) and ``evaluate``'s result."""

    evaluated: dict[str, Any]
    snapshot: str | None = None
    metrics: dict[str, Any]


def stored_or_evaluated(
    path: Path, config, snapshot: str | None, evaluate: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The metrics stored at ``path`` when they are of this config and snapshot, else
    ``evaluate()``'s, stored there first."""
    identity = config.identity()
    if path.is_file():
        try:
            stored = StoredEvaluation.model_validate_json(path.read_text())
        except (OSError, ValidationError):
            stored = None
        if stored is not None and (stored.evaluated, stored.snapshot) == (identity, snapshot):
            return stored.metrics
    metrics = evaluate()
    record = StoredEvaluation(evaluated=identity, snapshot=snapshot, metrics=metrics)
    atomic_write_json(path, record.model_dump(mode="json"))
    return metrics


def snapshot_index(run_dir: Path) -> SnapshotIndex:
    """The run's snapshots (``snapshots.json``), typed; a ``CurveError`` when it has none or
    its run did not finish them."""
    from diffmavil.training.snapshots import read_index

    index = read_index(run_dir)
    if index is None:
        raise CurveError(f"{run_dir}: no snapshots.json (set snapshot_every)")
    try:
        typed = SnapshotIndex.model_validate(index)
    except ValidationError as error:
        raise CurveError(f"{run_dir}: snapshots.json is not a snapshot index ({error})") from None
    if typed.final is None:
        raise CurveError(f"{run_dir}: snapshots.json has no final snapshot")
    return typed


def _point(entry: SnapshotEntry, metrics: ProbeMetrics, probe_seeds: int) -> CurvePoint:
    """The curve's point at ``entry``: where the run stood, and the probe's metrics there."""
    return CurvePoint(
        samples=entry.samples,
        flops=entry.flops,
        wall_clock_seconds=entry.wall_clock_seconds,
        accuracy=metrics.accuracy,
        mAP=metrics.mAP,
        probe_seeds=probe_seeds,
        step=entry.step,
        snapshot=entry.file,
        final=entry.final,
    )


def probe_curve(
    record: GridRecord, curve_probe, final_probe_seeds: int, model_config, run_dir: Path, device
) -> tuple[list[CurvePoint], float]:
    """The run's curve: each interior snapshot probed with ``curve_probe`` (stored ones read
    back), the final one the run's probe (``record.probe``); and the seconds it took."""
    if record.probe is None:
        raise CurveError("the curve's final point is the run's probe, and the run has none")
    started = time.perf_counter()
    points = []
    for entry in snapshot_index(run_dir).snapshots:
        if entry.final:
            points.append(_point(entry, record.probe, final_probe_seeds))
            continue
        metrics = stored_or_evaluated(
            run_dir / CURVE_DIR / f"{Path(entry.file).stem}.json",
            curve_probe,
            entry.file,
            lambda entry=entry: run_probe(
                curve_probe, "checkpoint", model_config, run_dir / entry.file, device
            ),
        )
        # evaluate's result, typed (a compiled probe adds torch.compile's counts)
        points.append(
            _point(entry, FinetuneMetrics.model_validate(metrics), curve_probe.probe_seeds)
        )
    return points, time.perf_counter() - started


def finetune(
    finetune_config, init: str, model_config, run_dir: Path, device
) -> tuple[FinetuneMetrics, float]:
    """The fine-tune of a run's final snapshot (``init`` checkpoint; its final checkpoint
    when it took no snapshots) or of a random-init control (``init`` random), stored in
    ``finetune.json``; and the seconds it took."""
    started = time.perf_counter()
    checkpoint, snapshot = None, None
    if init == "checkpoint":
        checkpoint, snapshot = run_dir, None
        if (run_dir / "snapshots.json").is_file():
            final = snapshot_index(run_dir).final
            assert final is not None
            checkpoint, snapshot = run_dir / final.file, final.file
    metrics = stored_or_evaluated(
        run_dir / FINETUNE_FILE,
        finetune_config,
        snapshot,
        lambda: run_probe(finetune_config, init, model_config, checkpoint, device),
    )
    return FinetuneMetrics.model_validate(metrics), time.perf_counter() - started
