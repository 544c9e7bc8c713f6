"""Whole-run projection: the request, the recipes' plans, the measurements' types and the
typed result (``bench.projection.measure`` takes the measurements,
``bench.projection.assemble`` turns them into projected totals).

What is projected matches what ``pretrain`` records in summary.json, per recipe:

- ``compute_seconds``: the train step (forward, backward, clipping, optimizer) summed over
  the plan, from the step's mean seconds at each of the plan's points;
- ``data_seconds``: waiting for the loader and moving the batch to the device (loader
  with ``num_workers=0``, ``pretrain``'s default), per sample: first-epoch (uncached)
  samples at the cold rate, later ones at the cached rate;
- ``overhead_seconds``: per-run fixed costs, checkpoint writes and logged rows;
- ``projected_seconds`` = compute + data + overhead (``wall_clock_seconds``).

Savings are fractions (0.22 = 22% less) against the baseline recipe (MAViL: fixed masking
at the recipe's start ratios, fixed base batch, the same sample budget).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from bench.projection.estimate import (
    PlanPoint,
    Selection,
    plan_points,
    select_points,
)
from bench.requests import ProjectTimeSpec
from bench.schema import PointRow, WholeRunRow
from diffmavil.config import Frozen
from diffmavil.schedules import BatchSchedule, MaskingSchedule, plan_run
from diffmavil.training.config import PretrainConfig

BASELINE = "mavil"


class ProjectionRequest(Frozen):
    """Recipes projected side by side in one interleaved run; ``baseline`` names the one
    savings are taken against. Every recipe runs at its own config's preset, budget,
    device, dtype, threads, data, checkpoint and log cadence."""

    recipes: dict[str, PretrainConfig]
    baseline: str = BASELINE
    compile: bool = False
    repeats: int = Field(5, ge=2, description="interleaved timed rounds per window, at least")
    min_seconds: float = Field(
        0.0,
        ge=0,
        description="more rounds until the timed rounds of all windows together have "
        "lasted this long (each window: its share)",
    )
    warmup: int = Field(1, ge=0, description="untimed calls of each task first")
    windows: int = Field(
        6,
        ge=1,
        description="separate measurement windows (fresh models each); the interval is "
        "Student's t over them (one window: a block bootstrap over its rounds)",
    )
    window_gap: float = Field(0.0, ge=0, description="seconds of rest between windows")
    level: float = Field(0.95, gt=0, lt=1, description="the intervals' two-sided level")
    max_anchors: int = Field(4, ge=2, description="measured points per batch size, at most")
    data_batches: int = Field(
        8, ge=1, description="loader batches timed after the first, cold and cached"
    )
    fixed_repeats: int = Field(2, ge=1, description="timed checkpoint writes and log rows")
    memory: bool = Field(True, description="peak memory per recipe (one process each)")
    matmul_repeats: int = Field(3, ge=1)
    resamples: int = Field(2000, ge=100, description="bootstrap resamples")
    seed: int = 0

    @model_validator(mode="after")
    def _valid(self) -> ProjectionRequest:
        if self.baseline not in self.recipes:
            raise ValueError(f"baseline {self.baseline!r} is not one of {list(self.recipes)}")
        first = next(iter(self.recipes.values()))
        for name, recipe in self.recipes.items():
            for key in ("device", "dtype", "threads"):
                if getattr(recipe, key) != getattr(first, key):
                    raise ValueError(f"recipe {name!r}: {key} differs; one run, one {key}")
        return self

    @property
    def device(self) -> str:
        return next(iter(self.recipes.values())).device

    @property
    def dtype(self) -> str:
        return next(iter(self.recipes.values())).dtype


def mavil_recipe(config: PretrainConfig) -> PretrainConfig:
    """MAViL's recipe for ``config``: variant ``mavil`` (decoder-kind and diffusion
    overrides dropped, other model overrides kept), fixed masking at the start ratios,
    fixed base batch, the same budget and execution settings."""
    masking = MaskingSchedule(kind="fixed", audio=config.masking.audio, video=config.masking.video)
    batch = BatchSchedule(kind="fixed", batch_size=config.batch.batch_size)
    overrides = {
        key: value
        for key, value in config.model_overrides.items()
        if not key.endswith((".kind", ".diffusion"))
    }
    return config.model_copy(
        update={
            "variant": "mavil",
            "model_overrides": overrides,
            "masking": masking,
            "batch": batch,
        }
    )


def describe_masking(masking: MaskingSchedule) -> str:
    start = f"{masking.audio}/{masking.video}"
    if masking.kind == "fixed":
        return f"fixed {start}"
    return f"curriculum {masking.shape} {start}->{masking.audio_end}/{masking.video_end}"


def describe_batch(batch: BatchSchedule) -> str:
    if batch.kind == "fixed":
        return f"fixed {batch.batch_size}"
    return f"adaptive/{batch.rule} {batch.batch_size}"


@dataclass(frozen=True)
class RecipePlan:
    """A recipe's plan, its points and which of them are measured."""

    name: str
    config: PretrainConfig
    steps: int
    flops: int
    selection: Selection

    @property
    def points(self) -> tuple[PlanPoint, ...]:
        return self.selection.points


def plan_recipe(name: str, config: PretrainConfig, max_anchors: int) -> RecipePlan:
    plan = plan_run(config.model, config.masking, config.batch, config.budget_samples)
    points = plan_points(config.model, plan)
    return RecipePlan(
        name=name,
        config=config,
        steps=len(plan),
        flops=sum(p.flops * p.steps for p in points),
        selection=select_points(points, max_anchors),
    )


@dataclass(frozen=True)
class Loading:
    """The loader's seconds: ``first``, of the run's first batch (``first_batch`` samples,
    with the iterator's start: paid once per run); per sample, ``cold`` (from the source)
    and ``warm`` (in-memory cache; empty when the run has no cache), one value per timed
    batch; the dataset's size."""

    first: float
    first_batch: int
    cold: tuple[float, ...]
    warm: tuple[float, ...]
    dataset_size: int


@dataclass(frozen=True)
class FixedCosts:
    """Seconds of one checkpoint write and of one logged row, per timed repeat."""

    checkpoint: tuple[float, ...]
    log_row: tuple[float, ...]


@dataclass(frozen=True)
class Window:
    """One measurement window: ``steps[recipe][point index]`` = seconds per interleaved
    round (measured points only), loading and fixed costs per recipe, the matmul rate
    (FLOP/s)."""

    steps: dict[str, dict[int, list[float]]]
    loading: dict[str, Loading]
    fixed: dict[str, FixedCosts]
    matmul_flops_per_s: float


@dataclass(frozen=True)
class Measurements:
    """Everything measured: the windows, peak memory per recipe (MB, kind) and the
    environment."""

    windows: list[Window]
    memory: dict[str, tuple[float, str] | None]
    environment: dict[str, Any]

    def steps(self, recipe: str) -> dict[int, list[float]]:
        """{point index: seconds of every timed round of every window}."""
        pooled: dict[int, list[float]] = {}
        for window in self.windows:
            for index, seconds in window.steps[recipe].items():
                pooled.setdefault(index, []).extend(seconds)
        return pooled

    @property
    def matmul_flops_per_s(self) -> float:
        return max(window.matmul_flops_per_s for window in self.windows)


class WholeRunResult(Frozen):
    """What ``project_whole_run`` returns; stored as ``bench.schema.ProjectionResults``."""

    rows: list[WholeRunRow]
    points: list[PointRow]
    environment: dict[str, Any]

    def stored(self, request_hash: str | None = None):
        """The typed result written to JSON (schema 2): the environment block, the paper's
        headline figures (``bench.flops.headline``) and the rows, then the points."""
        from bench.flops.headline import paper_headline
        from bench.schema import Environment, ProjectionResults

        env = {k: v for k, v in self.environment.items() if k in Environment.model_fields}
        return ProjectionResults(
            request_hash=request_hash,
            environment=env,
            dtype=self.environment.get("dtype"),
            paper_headline=paper_headline(),
            rows=[*self.rows, *self.points],
        )


def grid_projection_request(
    spec: ProjectTimeSpec,
    rows: list[tuple[str, PretrainConfig]],
    base_budget: int,
    baseline: str,
) -> ProjectionRequest:
    """One request for every row (identical recipes once, under the first row's name; a
    row's ``replica`` is left out: a copy of a run does the same work)."""
    recipes: dict[str, PretrainConfig] = {}
    samples = spec.samples or base_budget
    for name, config in rows:
        update: dict[str, Any] = {
            "budget_samples": max(1, round(samples * config.budget_samples / base_budget))
        }
        if spec.preset is not None:
            update["preset"] = spec.preset
        if spec.threads is not None:
            update["threads"] = spec.threads
        recipe = PretrainConfig.model_validate({**config.model_dump(), **update})
        # a replica trains as its original: projected once, as the original's recipe
        work = recipe.model_copy(update={"replica": None})
        if work not in recipes.values() or name == baseline:
            recipes[name] = work
    return ProjectionRequest(
        recipes=recipes,
        baseline=baseline,
        repeats=spec.repeats,
        min_seconds=spec.min_seconds,
        warmup=spec.warmup,
        max_anchors=spec.anchors,
        windows=spec.windows,
        memory=spec.memory,
    )
