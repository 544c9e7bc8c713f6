"""Whole-run projection: the request, the typed result, and the assembly of measurements
into projected totals (``bench.projection.measure`` takes the measurements).

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
    checkpoint_writes,
    cold_samples,
    interpolated_share,
    interpolation_error,
    logged_steps,
    plan_points,
    select_points,
    step_coefficients,
)
from bench.requests import ProjectTimeSpec
from bench.schema import PointRow, WholeRunRow
from bench.stats import BootstrapInterval, Term, bootstrap_totals
from bench.stats.bootstrap import total
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
    repeats: int = Field(5, ge=2, description="interleaved timed rounds, at least")
    min_seconds: float = Field(
        0.0, ge=0, description="more rounds until the timed rounds have lasted this long"
    )
    warmup: int = Field(1, ge=0, description="untimed calls of each task first")
    max_anchors: int = Field(4, ge=2, description="measured points per batch size, at most")
    data_batches: int = Field(2, ge=1, description="loader batches timed, cold and cached")
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
    """Loader seconds per sample: ``cold`` (from the source) and ``warm`` (in-memory cache;
    empty when the run has no cache), one value per timed batch; the dataset's size."""

    cold: tuple[float, ...]
    warm: tuple[float, ...]
    dataset_size: int


@dataclass(frozen=True)
class FixedCosts:
    """Seconds of one checkpoint write and of one logged row, per timed repeat."""

    checkpoint: tuple[float, ...]
    log_row: tuple[float, ...]


@dataclass(frozen=True)
class Measurements:
    """Everything measured: ``steps[recipe][point index]`` = seconds per interleaved round
    (measured points only), loading per recipe, fixed costs per recipe, peak memory per
    recipe (MB, kind), the matmul rate (FLOP/s) and the environment."""

    steps: dict[str, dict[int, list[float]]]
    loading: dict[str, Loading]
    fixed: dict[str, FixedCosts]
    memory: dict[str, tuple[float, str] | None]
    matmul_flops_per_s: float
    environment: dict[str, Any]


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


def _mean(values: tuple[float, ...] | list[float]) -> float:
    return sum(values) / len(values)


def recipe_terms(
    recipe: RecipePlan, measured: dict[str, Any]
) -> tuple[list[Term], dict[str, float]]:
    """The recipe's projected seconds as terms, and {compute, data, overhead} totals.

    ``measured``: {"steps": {point: [s, ...]}, "loading": Loading, "fixed": FixedCosts}.
    """
    config = recipe.config
    coefficients = step_coefficients(recipe.selection)
    steps: dict[int, list[float]] = measured["steps"]
    compute = [Term(tuple(steps[i]), w, paired=True) for i, w in sorted(coefficients.items())]
    loading: Loading = measured["loading"]
    cold = cold_samples(
        config.budget_samples, loading.dataset_size, cached=config.data_cache != "none"
    )
    warm = config.budget_samples - cold
    data = [Term(loading.cold, float(cold))]
    if warm:
        data.append(Term(loading.warm, float(warm)))
    fixed: FixedCosts = measured["fixed"]
    overhead = [
        Term(fixed.checkpoint, float(checkpoint_writes(recipe.steps, config.checkpoint_every))),
        Term(fixed.log_row, float(logged_steps(recipe.steps, config.log_every))),
    ]
    parts = {"compute": total(compute), "data": total(data), "overhead": total(overhead)}
    return [*compute, *data, *overhead], parts


def assemble(
    request: ProjectionRequest, recipes: dict[str, RecipePlan], measurements: Measurements
) -> WholeRunResult:
    """Projected totals, intervals, savings and per-point means from the measurements."""
    terms: dict[str, list[Term]] = {}
    parts: dict[str, dict[str, float]] = {}
    for name, recipe in recipes.items():
        terms[name], parts[name] = recipe_terms(
            recipe,
            {
                "steps": measurements.steps[name],
                "loading": measurements.loading[name],
                "fixed": measurements.fixed[name],
            },
        )
    totals, savings = bootstrap_totals(
        terms, request.baseline, resamples=request.resamples, seed=request.seed
    )
    base = recipes[request.baseline]
    rows: list[WholeRunRow] = []
    points: list[PointRow] = []
    for name, recipe in recipes.items():
        means = {i: _mean(v) for i, v in measurements.steps[name].items()}
        projected = Projected(
            parts[name], totals[name], None if name == request.baseline else savings[name]
        )
        rows.append(_recipe_row(request, name, recipe, base, projected, means, measurements))
        points += _point_rows(name, recipe, means, measurements.steps[name])
    return WholeRunResult(rows=rows, points=points, environment=measurements.environment)


@dataclass(frozen=True)
class Projected:
    """A recipe's projected seconds: {compute, data, overhead}, the total's interval and
    the saving's against the baseline (None for the baseline itself)."""

    parts: dict[str, float]
    total: BootstrapInterval
    saving: BootstrapInterval | None


def _recipe_row(
    request: ProjectionRequest,
    name: str,
    recipe: RecipePlan,
    base: RecipePlan,
    projected: Projected,
    means: dict[int, float],
    measurements: Measurements,
) -> WholeRunRow:
    """The whole-run row of one recipe: its plan, projected seconds, savings, the
    interpolation's error, memory and per-run costs."""
    config, parts, saving = recipe.config, projected.parts, projected.saving
    flop_saving = None if saving is None else 1.0 - recipe.flops / base.flops
    time_saving = None if saving is None else saving.estimate
    memory = measurements.memory.get(name)
    return WholeRunRow(
        recipe=name,
        baseline=saving is None,
        variant=config.variant,
        preset=config.preset,
        device=config.device,
        dtype=config.dtype,
        compile=request.compile,
        threads=int(measurements.environment.get("torch_threads") or 0),
        masking=describe_masking(config.masking),
        batch=describe_batch(config.batch),
        samples=config.budget_samples,
        steps=recipe.steps,
        points=len(recipe.points),
        measured_points=len(recipe.selection.measured),
        compute_seconds=parts["compute"],
        data_seconds=parts["data"],
        overhead_seconds=parts["overhead"],
        projected_seconds=projected.total.estimate,
        ci_low=projected.total.low,
        ci_high=projected.total.high,
        loading_bound=parts["data"] > parts["compute"],
        flops=recipe.flops,
        flop_saving=flop_saving,
        time_saving=time_saving,
        time_saving_ci_low=None if saving is None else saving.low,
        time_saving_ci_high=None if saving is None else saving.high,
        time_per_flop_saving=(
            time_saving / flop_saving
            if time_saving is not None and flop_saving and abs(flop_saving) > 1e-9
            else None
        ),
        interpolation_error=interpolation_error(recipe.selection, means),
        interpolated_share=interpolated_share(recipe.selection, means),
        peak_memory_mb=None if memory is None else round(memory[0], 1),
        peak_memory_kind=None if memory is None else memory[1],
        checkpoints=checkpoint_writes(recipe.steps, config.checkpoint_every),
        logged_rows=logged_steps(recipe.steps, config.log_every),
        repeats=len(next(iter(measurements.steps[name].values()))),
        matmul_gflops_per_s=round(measurements.matmul_flops_per_s / 1e9, 3),
    )


def _point_rows(
    name: str, recipe: RecipePlan, means: dict[int, float], steps: dict[int, list[float]]
) -> list[PointRow]:
    """One row per measured point of the recipe (an anchor or a check) with its mean."""
    anchors = set(recipe.selection.anchors)
    rows = []
    for index in recipe.selection.measured:
        point = recipe.points[index]
        rows.append(
            PointRow(
                recipe=name,
                batch_size=point.batch_size,
                visible_audio=point.visible[0],
                visible_video=point.visible[1],
                audio_mask_ratio=point.mask_ratio[0],
                video_mask_ratio=point.mask_ratio[1],
                steps=point.steps,
                flops=point.flops,
                role="anchor" if index in anchors else "check",
                mean_ms=round(1e3 * means[index], 4),
                repeats=len(steps[index]),
            )
        )
    return rows


def grid_projection_request(
    spec: ProjectTimeSpec,
    rows: list[tuple[str, PretrainConfig]],
    base_budget: int,
    baseline: str,
) -> ProjectionRequest:
    """One request for every row (identical recipes once, under the first row's name)."""
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
        if recipe not in recipes.values() or name == baseline:
            recipes[name] = recipe
    return ProjectionRequest(
        recipes=recipes,
        baseline=baseline,
        repeats=spec.repeats,
        min_seconds=spec.min_seconds,
        warmup=spec.warmup,
        max_anchors=spec.anchors,
        memory=spec.memory,
    )
