"""The single-projection validations' runs examined beyond the rule
(``reports/whole-run``): each run's steps split by batch size against the projection's
measured points (``segments``), and each run's error with the machine's speed, as a
reference matmul beside it saw it, taken out (``drift_adjusted``). Secondary analyses; the
rule itself is ``bench.report.projection_checks``."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.report.format import signed
from bench.report.projection_checks import RECIPES, Recipe, Stored, ValidationRecord, by_recipe


class StepRun(Stored):
    """One run's logged steps: compute + data seconds and the plan's batch size of each;
    each step's data seconds where stored (files of 2026-12-06 evening on)."""

    recipe: Recipe
    data_seconds: float
    step_seconds: list[float]
    batch_sizes: list[int]
    data_step_seconds: list[float] | None = None


class StepRecord(Stored):
    """``validate.py``'s steps file: run name -> its steps."""

    runs: dict[str, StepRun]


@dataclass(frozen=True)
class DriftAdjusted:
    """A recipe's runs against its projection, as the rule scores them (run / projected
    − 1) and after taking out the machine's speed as the reference matmul sees it:
    run / (projected × g) − 1, g = the projection's reference rate / the run's (the mean
    of the rates just before and just after it). A secondary analysis, not the rule."""

    recipe: str
    projection_gflops: float
    run_gflops: tuple[float, ...]
    errors: tuple[float, ...]
    adjusted: tuple[float, ...]

    @property
    def spread(self) -> tuple[float, float]:
        """(sd of the rule's errors, sd of the adjusted errors), as fractions."""
        return statistics.stdev(self.errors), statistics.stdev(self.adjusted)


def drift_adjusted(stored: ValidationRecord) -> list[DriftAdjusted]:
    """Each recipe's runs of ``validate.py``'s record against its first projection, raw and
    after the reference; a ValueError when a run or the projection has no reference rate
    (records made before the third round)."""
    out = []
    for recipe, row in by_recipe(stored.projections[0].rows).items():
        if row.matmul_gflops_per_s is None:
            raise ValueError(f"recipe {recipe}: the projection stores no reference matmul rate")
        runs = [r for r in stored.runs if r.recipe == recipe]
        rates = [r.reference_gflops for r in runs]
        if len(runs) < 2 or any(rate is None for rate in rates):
            raise ValueError(
                f"recipe {recipe}: needs 2 or more runs, each with its reference matmul rate "
                "(validate.py records them from 2026-12-07)"
            )
        errors, adjusted = [], []
        for run, rate in zip(runs, rates, strict=True):
            assert rate is not None
            scale = row.matmul_gflops_per_s / rate
            errors.append(run.wall_clock_seconds / row.projected_seconds - 1.0)
            adjusted.append(run.wall_clock_seconds / (row.projected_seconds * scale) - 1.0)
        out.append(DriftAdjusted(recipe, row.matmul_gflops_per_s,
                                 tuple(r for r in rates if r is not None),
                                 tuple(errors), tuple(adjusted)))  # fmt: skip
    return out


def drift_table(stored: ValidationRecord) -> str:
    """The secondary analysis as markdown: per recipe the reference rates, each run's error
    as the rule scores it and after the reference, and the two spreads."""
    lines = [
        "| recipe | projection's reference, GFLOP/s | runs' reference, GFLOP/s (each) "
        "| errors (each) | after the reference (each) | sd of the errors, points |",
        "|---|---:|---|---|---|---|",
    ]
    for d in drift_adjusted(stored):
        raw, after = d.spread
        lines.append(
            f"| {RECIPES[d.recipe]} | {d.projection_gflops:.0f} | "
            f"{', '.join(f'{v:.0f}' for v in d.run_gflops)} | "
            f"{', '.join(signed(100 * e) for e in d.errors)} | "
            f"{', '.join(signed(100 * e) for e in d.adjusted)} | "
            f"{100 * raw:.1f} as ruled, {100 * after:.1f} after the reference |"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Segment:
    """One recipe's steps at one batch size after the first epoch: the runs' mean step
    compute against the projection's measured points at that batch size (their means
    weighted by steps). A run's step is its logged compute + data less the step's own
    data where stored; otherwise (older files) its compute + data, whose data after the
    first epoch is a load from the in-memory cache (``cached_loading``)."""

    recipe: str
    batch_size: int
    steps: int
    run_ms: tuple[float, ...]
    projected_ms: float
    cached_loading: bool = False

    @property
    def ratio(self) -> float:
        return statistics.fmean(self.run_ms) / self.projected_ms


def first_epoch_samples() -> int:
    """The default synthetic dataset's size: the validations' first epoch, whose steps
    also build the items they load (cold loading, not step compute)."""
    from diffmavil.data.synthetic import SyntheticOptions

    return SyntheticOptions().size


def segments(
    stored: ValidationRecord, steps: StepRecord, first_epoch: int | None = None
) -> list[Segment]:
    """The segments of ``validate.py``'s record (its first projection's points) and of its
    steps file, each run's steps of its first ``first_epoch`` samples left out (their
    loading builds every item: its seconds are not spread evenly over the run's steps)."""
    epoch = first_epoch_samples() if first_epoch is None else first_epoch
    projection = stored.projections[0]
    names = {row.recipe: ("mavil" if row.baseline else "full") for row in projection.rows}
    out = []
    for recipe in RECIPES:
        runs = [r for r in steps.runs.values() if r.recipe == recipe]
        for batch in sorted({b for r in runs for b in r.batch_sizes}):
            measured = [
                p for p in projection.points
                if names.get(p.recipe) == recipe and p.batch_size == batch
            ]  # fmt: skip
            if not measured:
                continue
            weight = sum(p.steps for p in measured)
            projected = sum(p.mean_ms * p.steps for p in measured) / weight
            run_ms, count = [], 0
            for run in runs:
                chosen = _steady_steps(run, batch, epoch)
                count = len(chosen)
                if chosen:
                    run_ms.append(1e3 * statistics.fmean(chosen))
            if run_ms:
                cached = any(r.data_step_seconds is None for r in runs)
                out.append(Segment(recipe, batch, count, tuple(run_ms), projected, cached))
    return out


def _steady_steps(run: StepRun, batch: int, first_epoch: int) -> list[float]:
    """The run's step seconds at ``batch`` after its first ``first_epoch`` samples, less
    each step's data where stored."""
    data = run.data_step_seconds or [0.0] * len(run.step_seconds)
    chosen, seen = [], 0
    for total, loading, size in zip(run.step_seconds, data, run.batch_sizes, strict=True):
        if seen >= first_epoch and size == batch:
            chosen.append(total - loading)
        seen += size
    return chosen


def segment_table(
    stored: ValidationRecord, steps: StepRecord, first_epoch: int | None = None
) -> str:
    """The segments as markdown: per recipe and batch size, runs' vs projected step ms
    after the first epoch."""
    found = segments(stored, steps, first_epoch)
    label = "runs' step compute"
    if any(seg.cached_loading for seg in found):
        label += " + cached loading"
    lines = [
        f"| recipe | batch | steps per run | {label}, ms (each run) "
        "| projected, ms | runs / projected |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for s in found:
        each = ", ".join(f"{v:.1f}" for v in s.run_ms)
        lines.append(
            f"| {RECIPES[s.recipe]} | {s.batch_size} | {s.steps:,} | {each} | "
            f"{s.projected_ms:.1f} | {s.ratio:.3f} |"
        )
    return "\n".join(lines)
