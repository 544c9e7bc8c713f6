"""Whole-run projection: point selection, interpolation and its stated error, per-run cost
counts, and the integration over a plan checked against totals computed step by step with
a fake clock (exact, no real timing)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench.flops import baseline_config, run_saving
from bench.projection.assemble import assemble
from bench.projection.estimate import (
    checkpoint_writes,
    cold_samples,
    interpolation_error,
    interpolation_weights,
    logged_steps,
    plan_points,
    select_points,
    step_coefficients,
)
from bench.projection.recipes import (
    FixedCosts,
    Loading,
    Measurements,
    ProjectionRequest,
    WholeRunRow,
    Window,
    grid_projection_request,
    mavil_recipe,
    plan_recipe,
)
from bench.requests import ProjectTimeSpec
from bench.stats import (
    BOOTSTRAP_BLOCKS,
    Term,
    block_picks,
    bootstrap_totals,
    saving_systematic,
    window_interval,
)
from bench.timing import harness
from bench.timing.harness import RegionTimer, run_interleaved
from diffmavil.config import make_config
from diffmavil.flops import model_flops
from diffmavil.schedules import BatchSchedule, MaskingSchedule, plan_run
from diffmavil.training.config import PretrainConfig

CURRICULUM = MaskingSchedule(kind="curriculum")
ADAPTIVE = BatchSchedule(kind="adaptive", batch_size=16)


def full_recipe(preset: str = "tiny", budget: int = 16 * 60, **update) -> PretrainConfig:
    return PretrainConfig(
        preset=preset,
        variant="cross-attn",
        masking=CURRICULUM,
        batch=ADAPTIVE,
        budget_samples=budget,
        checkpoint_every=7,
        log_every=3,
        **update,
    )


# ------------------------------------------------------------------------ points
def test_plan_points_count_every_step_once():
    config = make_config("cpu", "cross-attn")
    plan = plan_run(config, CURRICULUM, ADAPTIVE, 16 * 500)
    points = plan_points(config, plan)
    assert sum(p.steps for p in points) == len(plan)
    assert len({p.key for p in points}) == len(points)
    # every step's FLOPs equal its point's (the same shapes cost the same)
    by_key = {p.key: p.flops for p in points}
    for step in plan[::37]:
        match = [
            p for p in points if p.batch_size == step.batch_size and p.mask_ratio == step.mask_ratio
        ]
        if match:
            assert match[0].flops == model_flops(config, step.mask_ratio, step.batch_size).total
    assert sum(p.flops * p.steps for p in points) == sum(
        model_flops(config, s.mask_ratio, s.batch_size).total for s in plan
    )
    assert len(by_key) > 20  # base's token grid: many distinct points on the ramp


def test_selection_measures_ends_and_checks_between_anchors():
    config = make_config("cpu", "cross-attn")
    points = plan_points(config, plan_run(config, CURRICULUM, ADAPTIVE, 16 * 500))
    selection = select_points(points, max_anchors=3)
    anchors, checks = set(selection.anchors), set(selection.checks)
    assert not anchors & checks
    for size in {p.batch_size for p in points}:
        segment = sorted((p.flops, i) for i, p in enumerate(points) if p.batch_size == size)
        members = {i for _, i in segment}
        if len(segment) <= 5:  # 2 * 3 - 1: small segments are measured whole
            assert members <= anchors
            continue
        assert segment[0][1] in anchors and segment[-1][1] in anchors
        assert len(members & anchors) == 3
        chosen = sorted(points[i].flops for i in members & anchors)
        for check in members & checks:
            flops = points[check].flops
            assert any(lo < flops < hi for lo, hi in itertools.pairwise(chosen))
    with pytest.raises(ValueError, match="max_anchors=1"):
        select_points(points, 1)


def test_interpolation_is_exact_for_time_affine_in_flops():
    config = make_config("cpu", "cross-attn")
    plan = plan_run(config, CURRICULUM, ADAPTIVE, 16 * 500)
    points = plan_points(config, plan)
    selection = select_points(points, max_anchors=2)
    assert len(selection.measured) < len(points)  # something is interpolated

    def seconds(point):  # per batch size its own line
        return 0.01 * point.batch_size + 3e-11 * point.flops

    coefficients = step_coefficients(selection)
    projected = sum(w * seconds(points[i]) for i, w in coefficients.items())
    truth = sum(
        0.01 * s.batch_size + 3e-11 * model_flops(config, s.mask_ratio, s.batch_size).total
        for s in plan
    )
    assert projected == pytest.approx(truth, rel=1e-12)
    means = {i: seconds(points[i]) for i in selection.measured}
    assert interpolation_error(selection, means) == pytest.approx(0.0, abs=1e-12)


def test_stated_interpolation_error_is_the_check_deviation_and_bounds_the_total():
    """Step time convex in FLOPs: linear interpolation errs; the stated error is the
    anchors-only deviation at the checks (recomputed here with numpy.interp) and bounds
    the error of the projected total."""
    config = make_config("cpu", "cross-attn")
    plan = plan_run(config, CURRICULUM, BatchSchedule(batch_size=16), 16 * 800)
    points = plan_points(config, plan)
    selection = select_points(points, max_anchors=3)
    assert selection.checks

    top = max(p.flops for p in points)

    def seconds(flops: float) -> float:
        x = flops / top
        return 0.05 + 0.2 * x + 0.6 * x**2

    means = {i: seconds(points[i].flops) for i in selection.measured}
    anchor_flops = sorted(points[i].flops for i in selection.anchors)
    expected = max(
        abs(
            np.interp(points[c].flops, anchor_flops, [seconds(f) for f in anchor_flops])
            - seconds(points[c].flops)
        )
        / seconds(points[c].flops)
        for c in selection.checks
    )
    stated = interpolation_error(selection, means)
    assert stated == pytest.approx(expected, rel=1e-9)
    assert stated > 1e-3  # the curvature shows

    projected = sum(w * means[i] for i, w in step_coefficients(selection).items())
    truth = sum(seconds(model_flops(config, s.mask_ratio, s.batch_size).total) for s in plan)
    assert projected != pytest.approx(truth, rel=1e-9)  # not exact ...
    assert abs(projected - truth) <= stated * truth  # ... but within the stated error


def test_interpolation_weights_sum_to_one_and_stay_in_segment():
    config = make_config("cpu", "cross-attn")
    points = plan_points(config, plan_run(config, CURRICULUM, ADAPTIVE, 16 * 500))
    selection = select_points(points, 3)
    for point, weights in zip(
        points, interpolation_weights(points, selection.measured), strict=True
    ):
        assert sum(weights.values()) == pytest.approx(1.0)
        assert all(0.0 <= w <= 1.0 for w in weights.values())
        assert all(points[i].batch_size == point.batch_size for i in weights)


# ------------------------------------------------------------------------ per-run costs
@pytest.mark.parametrize(("steps", "every"), [(1, 5), (10, 5), (11, 5), (24, 25), (1000, 25)])
def test_checkpoint_and_log_counts(steps, every):
    assert checkpoint_writes(steps, every) == steps // every + (1 if steps % every else 0)
    assert logged_steps(steps, every) == math.ceil(steps / every) + (
        1 if (steps - 1) % every else 0
    )


def test_cold_samples():
    assert cold_samples(1000, 96, cached=True) == 96
    assert cold_samples(50, 96, cached=True) == 50
    assert cold_samples(1000, 96, cached=False) == 1000


# ------------------------------------------------------------------------ bootstrap
# The projection's intervals come from bench.stats.bootstrap_totals: these pin the
# properties the projection relies on.
def test_bootstrap_without_spread_gives_a_point_interval():
    recipes = {
        "a": [Term((2.0, 2.0, 2.0), 10.0, paired=True), Term((1.0, 1.0), 5.0)],
        "b": [Term((1.0, 1.0, 1.0), 10.0, paired=True), Term((1.0, 1.0), 5.0)],
    }
    totals, savings = bootstrap_totals(recipes, "a", resamples=200)
    assert (totals["a"].estimate, totals["a"].low, totals["a"].high) == (25.0, 25.0, 25.0)
    assert savings["b"].estimate == pytest.approx(1 - 15 / 25)
    assert savings["b"].low == pytest.approx(savings["b"].high)


def test_paired_rounds_cancel_shared_load():
    """A slow round slows both recipes alike: the paired saving interval stays tight while
    each total's interval is wide."""
    load = [1.0, 3.0, 1.0, 2.5, 1.0, 4.0, 1.0, 1.5]
    recipes = {
        "a": [Term(tuple(2.0 * x for x in load), 1.0, paired=True)],
        "b": [Term(tuple(1.5 * x for x in load), 1.0, paired=True)],
    }
    totals, savings = bootstrap_totals(recipes, "a", resamples=500)
    assert totals["a"].high - totals["a"].low > 0.5
    assert savings["b"].estimate == pytest.approx(0.25)
    assert savings["b"].low == pytest.approx(0.25) and savings["b"].high == pytest.approx(0.25)
    with pytest.raises(ValueError, match="equally many rounds"):
        bootstrap_totals(
            {"a": [Term((1.0, 2.0), 1.0, paired=True)], "b": [Term((1.0,), 1.0, paired=True)]}, "a"
        )


@pytest.mark.parametrize("rounds", [1, 7, 10, 11, 40, 103])
def test_block_picks_string_consecutive_rounds_together(rounds):
    picks = block_picks(np.random.default_rng(0), rounds, 300)
    assert picks.shape == (300, rounds) and picks.min() >= 0 and picks.max() < rounds
    block = math.ceil(rounds / BOOTSTRAP_BLOCKS)
    for row in picks[:20]:
        for start in range(0, rounds, block):
            chunk = row[start : start + block]
            assert all((b - a) % rounds == 1 for a, b in itertools.pairwise(chunk))
    if rounds <= BOOTSTRAP_BLOCKS:  # single-round blocks: the plain paired bootstrap
        plain = np.random.default_rng(0).integers(0, rounds, size=(300, rounds))
        assert (picks == plain).all()


def test_drifting_rounds_widen_the_interval():
    """A machine whose speed drifts slowly (a sine over the rounds): the block bootstrap's
    interval of the total is wider than resampling the rounds one by one would give, and
    it contains the mean over whole drift cycles."""
    rounds = 100
    drift = 1.0 + 0.15 * np.sin(np.arange(rounds) * 2 * np.pi / 25)
    noise = np.random.default_rng(1).normal(0.0, 0.01, rounds)
    samples = tuple(float(x) for x in drift + noise)
    totals, _ = bootstrap_totals({"a": [Term(samples, 1.0, paired=True)]}, "a", resamples=2000)
    iid = np.random.default_rng(0).integers(0, rounds, size=(2000, rounds))
    low, high = np.quantile(np.asarray(samples)[iid].mean(axis=1), [0.025, 0.975])
    assert totals["a"].high - totals["a"].low > 1.5 * (high - low)
    assert totals["a"].low < 1.0 < totals["a"].high


# ------------------------------------------------------------------------ integration
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _expected_wall(config: PretrainConfig, step_seconds, loading: Loading, fixed: FixedCosts):
    """Projected wall-clock computed step by step over the plan, independently."""
    plan = plan_run(config.model, config.masking, config.batch, config.budget_samples)
    compute = sum(
        step_seconds(model_flops(config.model, s.mask_ratio, s.batch_size).total, s.batch_size)
        for s in plan
    )
    seen = set()
    cold = warm = 0
    for position in range(config.budget_samples):
        item = position % loading.dataset_size
        if item in seen:
            warm += 1
        else:
            cold += 1
            seen.add(item)
    data = (
        loading.first
        + (cold - loading.first_batch) * float(np.mean(loading.cold))
        + warm * float(np.mean(loading.warm))
    )
    every, log = config.checkpoint_every, config.log_every
    checkpoints = sum(1 for s in plan if s.step == len(plan) - 1 or (s.step + 1) % every == 0)
    rows = sum(1 for s in plan if s.step == len(plan) - 1 or s.step % log == 0)
    overhead = checkpoints * float(np.mean(fixed.checkpoint)) + rows * float(np.mean(fixed.log_row))
    return compute, data, overhead


@pytest.mark.parametrize("preset", ["tiny", "cpu"])
def test_fake_timer_projection_equals_the_step_by_step_total(monkeypatch, preset):
    """Tasks advance a fake clock by a known step time (affine in FLOPs per batch size, with
    round-to-round noise of mean zero): the projected totals equal the sums over the plan."""
    clock = FakeClock()
    monkeypatch.setattr(harness.time, "perf_counter", clock)
    full = full_recipe(preset, budget=16 * 90 if preset == "tiny" else 16 * 400)
    request = ProjectionRequest(
        recipes={"mavil": mavil_recipe(full), "diffmavil": full}, repeats=6, memory=False
    )
    recipes = {n: plan_recipe(n, c, request.max_anchors) for n, c in request.recipes.items()}
    noise = [0.1, -0.1, 0.05, -0.05, 0.2, -0.2]  # mean zero over 6 rounds

    def step_seconds(flops: int, batch: int) -> float:
        return 0.002 * batch + flops / 4e10

    rounds: dict[str, int] = {}
    tasks = {}
    for name, recipe in recipes.items():
        for index in recipe.selection.measured:
            point = recipe.points[index]
            key = f"{name}/{index}"

            def task(timer: RegionTimer, key=key, point=point) -> None:
                r = rounds.get(key, -1)
                rounds[key] = r + 1
                with timer.region("step"):
                    clock.now += step_seconds(point.flops, point.batch_size) * (
                        1 + (noise[r % 6] if r >= 0 else 5.0)  # warm-up would be 6x
                    )

            tasks[key] = task
    samples = run_interleaved(tasks, warmup=1, repeats=6)
    steps = {name: {} for name in recipes}
    for key, regions in samples.items():
        name, index = key.rsplit("/", 1)
        steps[name][int(index)] = regions["step"]
    first_batch = recipes["mavil"].config.batch.batch_size
    loading = Loading(
        first=0.25, first_batch=first_batch, cold=(0.011, 0.009), warm=(0.0011, 0.0009),
        dataset_size=300,
    )  # fmt: skip
    fixed = {
        "mavil": FixedCosts(checkpoint=(0.30, 0.34), log_row=(0.002, 0.004)),
        "diffmavil": FixedCosts(checkpoint=(0.31, 0.33), log_row=(0.003, 0.003)),
    }
    measurements = Measurements(
        windows=[Window(steps, {n: loading for n in recipes}, fixed, 5e10)],
        memory={"mavil": (100.0, "test"), "diffmavil": (90.0, "test")},
        environment={"torch_threads": 1},
    )
    result = assemble(request, recipes, measurements)
    rows = {row.recipe: row for row in result.rows}
    for name in ("mavil", "diffmavil"):
        compute, data, overhead = _expected_wall(
            request.recipes[name], step_seconds, loading, fixed[name]
        )
        row = rows[name]
        assert row.compute_seconds == pytest.approx(compute, rel=1e-9)
        assert row.data_seconds == pytest.approx(data, rel=1e-12)
        assert row.overhead_seconds == pytest.approx(overhead, rel=1e-12)
        assert row.projected_seconds == pytest.approx(compute + data + overhead, rel=1e-9)
        assert row.ci_low <= row.projected_seconds <= row.ci_high
        assert row.loading_bound == (data > compute)
        assert row.kind == "whole_run"
    base, ours = rows["mavil"], rows["diffmavil"]
    assert ours.time_saving == pytest.approx(1 - ours.projected_seconds / base.projected_seconds)
    assert ours.time_saving_ci_low <= ours.time_saving <= ours.time_saving_ci_high
    flops = run_saving(full.model, full.masking, full.batch, full.budget_samples)
    assert (
        ours.flops == flops["run"]["total_flops"] and base.flops == flops["baseline"]["total_flops"]
    )
    assert ours.flop_saving == pytest.approx(flops["saving"])
    assert ours.time_per_flop_saving == pytest.approx(ours.time_saving / ours.flop_saving)
    assert base.flop_saving is None and base.time_saving is None
    assert (base.peak_memory_mb, ours.peak_memory_mb) == (100.0, 90.0)
    if preset == "cpu":  # time affine in FLOPs per batch size: interpolation is exact
        assert ours.measured_points < ours.points
        assert ours.interpolation_error < 1e-9
        assert 0.0 < ours.interpolated_share < 1.0
    assert {p.recipe for p in result.points} == {"mavil", "diffmavil"}
    row = WholeRunRow.model_validate(ours.model_dump())  # round trip of the typed row
    assert row == ours


def test_mavil_recipe_is_the_flop_baseline():
    full = full_recipe("base", model_overrides={"video_decoder.dim": 256, "video_decoder.heads": 8})
    base = mavil_recipe(full)
    assert base.model == baseline_config(full.model)
    assert (base.masking.kind, base.batch.kind) == ("fixed", "fixed")
    assert base.masking.start == full.masking.start
    assert base.batch.batch_size == full.batch.batch_size
    assert base.budget_samples == full.budget_samples


def test_request_rejects_mixed_devices_and_unknown_baseline():
    full = full_recipe()
    with pytest.raises(ValueError, match="baseline 'x'"):
        ProjectionRequest(recipes={"a": full}, baseline="x")
    with pytest.raises(ValueError, match="threads differs"):
        ProjectionRequest(
            recipes={"mavil": mavil_recipe(full), "b": full.model_copy(update={"threads": 3})}
        )


def _windows_of(recipes, speeds: list[float], step_seconds) -> list[Window]:
    """One window per speed factor: every measured point's 3 rounds at step_seconds x speed,
    the same loading and fixed costs in each."""
    windows = []
    for speed in speeds:
        steps = {
            name: {
                i: [step_seconds(recipe.points[i]) * speed * f for f in (0.98, 1.0, 1.02)]
                for i in recipe.selection.measured
            }
            for name, recipe in recipes.items()
        }
        loading = Loading(0.5 * speed, 16, (0.002,), (0.0002,), 1000)
        fixed = {n: FixedCosts((0.3 * speed,), (0.002,)) for n in recipes}
        windows.append(Window(steps, {n: loading for n in recipes}, fixed, 1e10))
    return windows


def test_windowed_projection_is_the_mean_of_its_windows_with_a_t_interval():
    """Four windows at known speeds: the totals are the windows' mean; the intervals are
    window_interval over the per-window totals and savings, the interpolation's half-width
    (computed here from the rows' own error and share) in quadrature."""
    full = full_recipe("cpu", budget=16 * 400)
    request = ProjectionRequest(
        recipes={"mavil": mavil_recipe(full), "diffmavil": full}, windows=4, memory=False
    )
    recipes = {n: plan_recipe(n, c, request.max_anchors) for n, c in request.recipes.items()}

    def step_seconds(point) -> float:  # not affine in FLOPs: interpolation has an error
        return 0.01 * point.batch_size + (point.flops / 1e10) ** 1.3

    speeds = [1.0, 1.1, 0.95, 1.05]
    windows = _windows_of(recipes, speeds, step_seconds)
    one = {
        n: assemble(
            request.model_copy(update={"windows": 1}),
            recipes,
            Measurements([w], {n: None for n in recipes}, {}),
        )
        for n, w in zip("abcd", windows, strict=True)
    }
    per_window = {
        name: [next(r for r in one[k].rows if r.recipe == name).projected_seconds for k in "abcd"]
        for name in recipes
    }
    result = assemble(request, recipes, Measurements(windows, {n: None for n in recipes}, {}))
    rows = {row.recipe: row for row in result.rows}
    systematic = {}
    for name, row in rows.items():
        assert row.windows == 4 and row.interval_method == "windows-t+systematic"
        assert row.window_seconds == pytest.approx(per_window[name], rel=1e-12)
        assert row.projected_seconds == pytest.approx(np.mean(per_window[name]), rel=1e-12)
        systematic[name] = row.interpolation_error * row.interpolated_share * row.compute_seconds
        assert row.systematic_half_seconds == pytest.approx(systematic[name], rel=1e-9)
        expected = window_interval(per_window[name], systematic[name]).interval
        assert (row.ci_low, row.ci_high) == pytest.approx((expected.low, expected.high))
    assert rows["diffmavil"].interpolation_error > 0 and systematic["mavil"] == 0.0
    ours, base = per_window["diffmavil"], per_window["mavil"]
    savings = [1 - c / b for c, b in zip(ours, base, strict=True)]
    half = saving_systematic(np.mean(ours), np.mean(base), systematic["diffmavil"], 0.0)
    spread = window_interval(savings, half)
    row = rows["diffmavil"]
    assert row.window_savings == pytest.approx(savings)
    center = 1 - np.mean(ours) / np.mean(base)  # the saving of the projected totals
    assert row.time_saving == pytest.approx(center)
    assert row.time_saving == pytest.approx(
        1 - row.projected_seconds / rows["mavil"].projected_seconds
    )
    assert (row.time_saving_ci_low, row.time_saving_ci_high) == pytest.approx(
        (center - spread.half_width, center + spread.half_width)
    )
    assert row.time_saving_systematic == pytest.approx(half)


def test_one_window_widens_its_bootstrap_by_the_interpolation_error():
    full = full_recipe("cpu", budget=16 * 400)
    request = ProjectionRequest(
        recipes={"mavil": mavil_recipe(full), "diffmavil": full}, windows=1, memory=False
    )
    recipes = {n: plan_recipe(n, c, request.max_anchors) for n, c in request.recipes.items()}
    windows = _windows_of(recipes, [1.0], lambda p: 0.01 * p.batch_size + (p.flops / 1e10) ** 1.3)
    result = assemble(request, recipes, Measurements(windows, {n: None for n in recipes}, {}))
    row = next(r for r in result.rows if r.recipe == "diffmavil")
    assert row.interval_method == "block-bootstrap+systematic" and row.window_seconds is None
    bootstrap_half_low = row.projected_seconds - row.ci_low
    assert bootstrap_half_low >= row.systematic_half_seconds > 0
    base = next(r for r in result.rows if r.recipe == "mavil")
    assert base.interval_method == "block-bootstrap"  # MAViL's one point is measured


def test_a_grid_projects_a_replica_as_its_original():
    base = full_recipe("cpu", budget=1600)
    mavil = mavil_recipe(base)
    rows = [("mavil", mavil), ("mavil-replica", mavil.model_copy(update={"replica": 1})),
            ("diffmavil", base)]  # fmt: skip
    request = grid_projection_request(ProjectTimeSpec(windows=3), rows, 1600, "mavil")
    assert list(request.recipes) == ["mavil", "diffmavil"] and request.windows == 3
