"""Whole-run projection: the assembly of measurements into projected totals, intervals,
savings and per-point rows (``bench.projection.recipes`` holds the request and the
measurements' types; ``bench.stats.wallclock`` the interval arithmetic)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.projection.estimate import (
    checkpoint_writes,
    cold_samples,
    interpolated_share,
    interpolation_error,
    logged_steps,
    step_coefficients,
)
from bench.projection.recipes import (
    FixedCosts,
    Loading,
    Measurements,
    ProjectionRequest,
    RecipePlan,
    WholeRunResult,
    Window,
    describe_batch,
    describe_masking,
)
from bench.schema import PointRow, WholeRunRow
from bench.stats import (
    BootstrapInterval,
    Term,
    bootstrap_totals,
    saving_systematic,
    window_interval,
)
from bench.stats.bootstrap import total


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
    data = [Term((loading.first,), 1.0)]
    if cold > loading.first_batch:
        data.append(Term(loading.cold, float(cold - loading.first_batch)))
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
    seconds = [_window_seconds(recipes, window) for window in measurements.windows]
    pooled = {name: measurements.steps(name) for name in recipes}
    means = {name: _point_means(pooled[name]) for name in recipes}
    parts = {
        name: {part: _mean([w[name][1][part] for w in seconds]) for part in PARTS}
        for name in recipes
    }
    systematic = {
        name: interpolation_error(recipe.selection, means[name])
        * interpolated_share(recipe.selection, means[name])
        * parts[name]["compute"]
        for name, recipe in recipes.items()
    }
    if len(seconds) >= 2:
        projected = _windowed(request, recipes, seconds, systematic, parts)
    else:
        projected = _bootstrapped(request, recipes, seconds[0], systematic, parts)
    base = recipes[request.baseline]
    rows: list[WholeRunRow] = []
    points: list[PointRow] = []
    for name, recipe in recipes.items():
        rounds = len(next(iter(pooled[name].values())))
        rows.append(_recipe_row(request, name, recipe, base, projected[name], means[name],
                                measurements, rounds))  # fmt: skip
        points += _point_rows(name, recipe, means[name], pooled[name])
    return WholeRunResult(rows=rows, points=points, environment=measurements.environment)


PARTS = ("compute", "data", "overhead")
RecipeSeconds = dict[str, tuple[list[Term], dict[str, float]]]


def _point_means(steps: dict[int, list[float]]) -> dict[int, float]:
    return {index: _mean(values) for index, values in steps.items()}


def _window_seconds(recipes: dict[str, RecipePlan], window: Window) -> RecipeSeconds:
    """{recipe: (its terms, {compute, data, overhead})} from one window's measurements."""
    return {
        name: recipe_terms(
            recipe,
            {
                "steps": window.steps[name],
                "loading": window.loading[name],
                "fixed": window.fixed[name],
            },
        )
        for name, recipe in recipes.items()
    }


@dataclass(frozen=True)
class Spread:
    """An estimate and its two-sided interval, with the half-widths that make it: the
    statistical one (between windows, or one window's bootstrap) and the systematic one
    (interpolation); ``windows``: the per-window values (empty with one window)."""

    estimate: float
    low: float
    high: float
    statistical: float
    systematic: float
    method: str
    windows: tuple[float, ...] = ()


@dataclass(frozen=True)
class Projected:
    """A recipe's projected seconds: {compute, data, overhead}, the total's spread and the
    saving's against the baseline (None for the baseline itself)."""

    parts: dict[str, float]
    total: Spread
    saving: Spread | None


def _from_windows(values: list[float], systematic: float, level: float) -> Spread:
    result = window_interval(values, systematic, level)
    interval = result.interval
    return Spread(
        interval.estimate, interval.low, interval.high, result.statistical,
        result.systematic, interval.method, result.windows,
    )  # fmt: skip


def _windowed(
    request: ProjectionRequest,
    recipes: dict[str, RecipePlan],
    seconds: list[RecipeSeconds],
    systematic: dict[str, float],
    parts: dict[str, dict[str, float]],
) -> dict[str, Projected]:
    """Each recipe's total and saving from its per-window values: Student's t over the
    windows in quadrature with the interpolation's half-width."""
    base = request.baseline
    totals = {name: [sum(w[name][1].values()) for w in seconds] for name in recipes}
    projected = {}
    for name in recipes:
        total = _from_windows(totals[name], systematic[name], request.level)
        saving = None
        if name != base:
            per_window = [1.0 - c / b for c, b in zip(totals[name], totals[base], strict=True)]
            ours, theirs = _mean(totals[name]), _mean(totals[base])
            half = _saving_half(ours, theirs, systematic[name], systematic[base])
            spread = _from_windows(per_window, half, request.level)
            # centred on the saving of the projected totals (1 - ours / theirs), so that a
            # row's saving and its seconds agree; the spread is the windows' savings'
            center = 1.0 - ours / theirs
            half_width = (spread.high - spread.low) / 2.0
            saving = Spread(
                center, center - half_width, center + half_width, spread.statistical,
                spread.systematic, spread.method, spread.windows,
            )  # fmt: skip
        projected[name] = Projected(parts[name], total, saving)
    return projected


def _saving_half(ours: float, theirs: float, our_half: float, their_half: float) -> float:
    """The saving's systematic half-width (0 when the baseline's seconds are not positive:
    a broken measurement that ``diffbench check`` reports by its parts)."""
    return saving_systematic(ours, theirs, our_half, their_half) if theirs > 0 else 0.0


def _with_systematic(interval: BootstrapInterval, systematic: float) -> Spread:
    """A one-window bootstrap interval widened by ``systematic`` in quadrature, per side."""
    low = interval.estimate - math.hypot(interval.estimate - interval.low, systematic)
    high = interval.estimate + math.hypot(interval.high - interval.estimate, systematic)
    statistical = (interval.high - interval.low) / 2.0
    method = "block-bootstrap+systematic" if systematic else "block-bootstrap"
    return Spread(interval.estimate, low, high, statistical, systematic, method)


def _bootstrapped(
    request: ProjectionRequest,
    recipes: dict[str, RecipePlan],
    seconds: RecipeSeconds,
    systematic: dict[str, float],
    parts: dict[str, dict[str, float]],
) -> dict[str, Projected]:
    """One window: the block bootstrap over its rounds (it sees the noise of one window,
    not the drift between windows), widened by the interpolation's half-width."""
    terms = {name: seconds[name][0] for name in recipes}
    totals, savings = bootstrap_totals(
        terms, request.baseline, resamples=request.resamples, seed=request.seed,
        level=request.level,
    )  # fmt: skip
    base = request.baseline
    projected = {}
    for name in recipes:
        saving = None
        if name != base:
            half = _saving_half(
                totals[name].estimate, totals[base].estimate, systematic[name], systematic[base]
            )
            saving = _with_systematic(savings[name], half)
        projected[name] = Projected(
            parts[name], _with_systematic(totals[name], systematic[name]), saving
        )
    return projected


def _recipe_row(
    request: ProjectionRequest,
    name: str,
    recipe: RecipePlan,
    base: RecipePlan,
    projected: Projected,
    means: dict[int, float],
    measurements: Measurements,
    rounds: int,
) -> WholeRunRow:
    """The whole-run row of one recipe: its plan, projected seconds, savings, the
    interpolation's error, memory and per-run costs."""
    config, parts, saving = recipe.config, projected.parts, projected.saving
    flop_saving = None if saving is None else 1.0 - recipe.flops / base.flops
    time_saving = None if saving is None else saving.estimate
    memory = measurements.memory.get(name)
    total = projected.total
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
        projected_seconds=total.estimate,
        ci_low=total.low,
        ci_high=total.high,
        windows=len(measurements.windows),
        interval_method=total.method,
        interval_level=request.level,
        statistical_half_seconds=total.statistical,
        systematic_half_seconds=total.systematic,
        window_seconds=list(total.windows) or None,
        loading_bound=parts["data"] > parts["compute"],
        flops=recipe.flops,
        flop_saving=flop_saving,
        time_saving=time_saving,
        time_saving_ci_low=None if saving is None else saving.low,
        time_saving_ci_high=None if saving is None else saving.high,
        time_saving_systematic=None if saving is None else saving.systematic,
        window_savings=None if saving is None else list(saving.windows) or None,
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
        repeats=rounds,
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
