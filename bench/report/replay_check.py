"""A diagnostic of the projection's gap to real runs (``reports/whole-run/replay.py``): in
one process, the full recipe's own plan replayed through the projection's train step
(every step's batch size and mask ratio, fresh random inputs, no loader), ``pretrain``'s
loop on the same plan, A-B-B-A, then the projection's points measured interleaved as it
measures them. Compared per batch size and in total: if the runs match the replays, a gap
to the points is in the sequence of steps (what the interleaved points do not see); if
the replays match the points, it is in the training loop.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from bench.projection.recipes import plan_recipe
from diffmavil.schedules import plan_run
from diffmavil.tokens import keep_count
from diffmavil.training.config import PretrainConfig, load_pretrain_config

ORDER = ("replay1", "run1", "run2", "replay2")


class _Stored(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ReplayPoint(_Stored):
    """One measured point of the projection: its shape, planned steps, step seconds."""

    batch: int
    visible: tuple[int, int]
    steps: int
    seconds: list[float]


class ReplayRecord(_Stored):
    """``replay.py``'s file: per-step compute seconds of each replay and run (plan order)
    and the interleaved points."""

    date: str
    config: dict
    replay1: list[float]
    run1: list[float]
    run2: list[float]
    replay2: list[float]
    points: dict[str, ReplayPoint]

    def pretrain_config(self) -> PretrainConfig:
        return load_pretrain_config(self.config)


@dataclass(frozen=True)
class ReplaySegment:
    """One batch size (or the whole run, ``batch`` None): mean step ms of each replay and
    run, and the projection's steps-weighted mean of its measured points."""

    batch: int | None
    steps: int
    measured: dict[str, float]  # ORDER -> mean ms
    points_ms: float

    def ratio(self, kind: str) -> float:
        """Mean of the two ``kind`` ("replay" or "run") over the points' mean."""
        return statistics.fmean(self.measured[f"{kind}{i}"] for i in (1, 2)) / self.points_ms


def step_points(config: PretrainConfig) -> list[tuple[int, tuple[int, int]]]:
    """Each planned step's point: (batch size, (visible audio, visible video))."""
    model = config.model
    patches = (model.num_patches("audio"), model.num_patches("video"))
    return [
        (
            s.batch_size,
            (keep_count(patches[0], s.mask_ratio[0]), keep_count(patches[1], s.mask_ratio[1])),
        )
        for s in plan_run(model, config.masking, config.batch, config.budget_samples)
    ]


def replay_segments(record: ReplayRecord) -> list[ReplaySegment]:
    """Per batch size in the plan's order, then the whole run (the projection's compute:
    every point's steps times its mean, unmeasured points interpolated as it does)."""
    config = record.pretrain_config()
    keys = step_points(config)
    means = {
        (p.batch, tuple(p.visible)): statistics.fmean(p.seconds) for p in record.points.values()
    }
    recipe = plan_recipe("full", config, 4)
    point_ms = {}
    for point in recipe.points:
        key = (point.batch_size, tuple(point.visible))
        point_ms[key] = means.get(key)
    if any(v is None for v in point_ms.values()):
        raise ValueError("replay: a planned point was not measured (replay.py measures every one)")
    out = []
    for batch in dict.fromkeys(b for b, _ in keys):
        chosen = [i for i, (b, _) in enumerate(keys) if b == batch]
        out.append(_segment(record, batch, chosen, [point_ms[keys[i]] for i in chosen]))
    everything = list(range(len(keys)))
    out.append(_segment(record, None, everything, [point_ms[k] for k in keys]))
    return out


def _segment(record: ReplayRecord, batch, chosen: list[int], points: list[float]) -> ReplaySegment:
    measured = {
        name: 1e3 * statistics.fmean(getattr(record, name)[i] for i in chosen) for name in ORDER
    }
    return ReplaySegment(batch, len(chosen), measured, 1e3 * statistics.fmean(points))


def replay_table(record: ReplayRecord) -> str:
    """The segments as markdown."""
    lines = [
        "| batch | steps | points (interleaved), ms | replays, ms | runs, ms "
        "| replays / points | runs / points | runs / replays |",
        "|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for s in replay_segments(record):
        m = s.measured
        lines.append(
            f"| {'whole run' if s.batch is None else s.batch} | {s.steps:,} | {s.points_ms:.1f} "
            f"| {m['replay1']:.1f}, {m['replay2']:.1f} | {m['run1']:.1f}, {m['run2']:.1f} "
            f"| {s.ratio('replay'):.3f} | {s.ratio('run'):.3f} "
            f"| {s.ratio('run') / s.ratio('replay'):.3f} |"
        )
    return "\n".join(lines)
