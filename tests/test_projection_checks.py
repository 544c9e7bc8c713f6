"""``bench.report.projection_checks``: the coverage table and the single-projection
validation of stored records, against hand computation and against
``reports/whole-run/validate.py``'s own verdict (the two must agree)."""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
from pathlib import Path

import pytest
from scipy import stats

from bench.migrate import load_projection
from bench.report.projection_checks import (
    CoverageRecord,
    ValidationRecord,
    coverage_rows,
    coverage_table,
    coverage_windows,
    single_projection_validation,
    validation_table,
)
from bench.report.projection_runs import StepRecord
from bench.stats import unpaired_saving

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def template() -> list[dict]:
    """A stored projection's two rows (MAViL's recipe, the full recipe) to fill in."""
    path = ROOT / "reports" / "table2" / "whole-run.json"
    stored = load_projection(path, json.loads(path.read_text()))
    return [
        r.model_dump(mode="json")
        for r in stored.whole_run_rows
        if r.recipe in ("mavil", "diffmavil")
    ]


def _rows(template, mavil: float, full: float, half: float, saving_half: float) -> list[dict]:
    rows = []
    for row in template:
        value = mavil if row["baseline"] else full
        row = {**row, "projected_seconds": value, "ci_low": value - half, "ci_high": value + half}
        if not row["baseline"]:
            saving = 1 - full / mavil
            row.update(time_saving=saving, time_saving_ci_low=saving - saving_half,
                       time_saving_ci_high=saving + saving_half)  # fmt: skip
        rows.append(row)
    return rows


def test_coverage_rows_score_each_interval_against_the_others_mean(template):
    # 12 projections in 3 windows; the 12th lies far off: its interval misses the others'
    # mean, and its value pulls theirs, so the quantity's sd is dominated by it
    values = [100.0 + (i % 4) * 0.5 for i in range(11)] + [110.0]
    projections = [
        {"window": f"2026-12-06T{18 + i // 4}:00:00+00:00",
         "rows": _rows(template, v, 0.8 * v, 2.0, 0.01)}
        for i, v in enumerate(values)
    ]  # fmt: skip
    stored = CoverageRecord.model_validate({"projections": projections})
    rows = {r.quantity: r for r in coverage_rows(stored)}
    mavil = rows["MAViL's recipe, seconds"]
    others = [(sum(values) - v) / 11 for v in values]
    hits = sum(v - 2.0 <= m <= v + 2.0 for v, m in zip(values, others, strict=True))
    assert mavil.check.hits == hits and not mavil.check.covered[-1]
    assert mavil.mean == pytest.approx(statistics.fmean(values))
    assert mavil.check.sd == pytest.approx(statistics.stdev(values))
    assert coverage_windows(stored) == [
        ("2026-12-06T18:00:00+00:00", 4), ("2026-12-06T19:00:00+00:00", 4),
        ("2026-12-06T20:00:00+00:00", 4),
    ]  # fmt: skip
    # the saving is the same 20% in every projection: its sd is 0, no width passes
    assert rows["saving, %"].check.sd == pytest.approx(0.0, abs=1e-9)
    table = coverage_table(stored)
    assert table.count("\n") == 4 and "| saving, % |" in table and "**fails**" in table


def test_a_coverage_check_with_too_few_projections_says_so(template):
    stored = CoverageRecord.model_validate(
        {"projections": [{"window": "w", "rows": _rows(template, v, 80.0, 2.0, 0.01)}
                         for v in (99.0, 100.0, 101.0)]}
    )  # fmt: skip
    assert all(r.verdict == "not enough projections" for r in coverage_rows(stored))


def _validate_script():
    spec = importlib.util.spec_from_file_location(
        "validate_script", ROOT / "reports" / "whole-run" / "validate.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(template, mavil_runs, full_runs, saving_half=0.05):
    runs = [{"recipe": "mavil", "wall_clock_seconds": s} for s in mavil_runs]
    runs += [{"recipe": "full", "wall_clock_seconds": s} for s in full_runs]
    return {"projections": [{"rows": _rows(template, 100.0, 80.0, 3.0, saving_half)}], "runs": runs}


@pytest.mark.parametrize(
    "mavil_runs, full_runs, saving_half, met",
    [
        ([98.0, 102.0, 104.0, 101.0], [79.0, 83.0, 81.0, 80.0], 0.05, True),
        ([98.0, 102.0, 111.0, 101.0], [79.0, 83.0, 81.0, 80.0], 0.05, False),  # a run +11%
        ([106.0, 106.0, 107.0, 105.0], [84.5, 84.0, 85.0, 84.0], 0.05, False),  # median +6%
        ([100.0, 100.0, 101.0, 99.0], [84.0, 84.0, 85.0, 83.0], 0.02, False),  # saving 16%
    ],
)
def test_single_projection_validation_by_hand_and_as_the_script_scores_it(
    template, mavil_runs, full_runs, saving_half, met
):
    record = _record(template, mavil_runs, full_runs, saving_half)
    checked = single_projection_validation(ValidationRecord.model_validate(record))
    errors = [s / 100.0 - 1 for s in mavil_runs]
    assert checked.rows["mavil"].errors == pytest.approx(errors)
    assert checked.rows["mavil"].median_error == pytest.approx(statistics.median(errors))
    measured = 1 - statistics.fmean(full_runs) / statistics.fmean(mavil_runs)
    assert checked.saving.measured.estimate == pytest.approx(measured)
    interval = unpaired_saving(mavil_runs, full_runs)
    assert (checked.saving.measured.low, checked.saving.measured.high) == (
        interval.low, interval.high,
    )  # fmt: skip
    assert checked.met is met
    difference = checked.saving_difference
    projected = 1 - 80.0 / 100.0
    half = math.hypot((interval.high - interval.low) / 2, saving_half)
    assert difference.estimate == pytest.approx(measured - projected)
    assert (difference.low, difference.high) == pytest.approx(
        (measured - projected - half, measured - projected + half)
    )
    script = _validate_script().single_projection_rule(record["projections"][0], record["runs"])
    assert script["met"] is met
    assert script["mavil"]["errors"] == pytest.approx(errors)
    table = validation_table([checked])
    assert table.count("\n") == 4 and ("validated" in table) is checked.rows["full"].passed


def _point(recipe: str, batch: int, steps: int, mean_ms: float) -> dict:
    return {"recipe": recipe, "batch_size": batch, "visible_audio": 10, "visible_video": 10,
            "audio_mask_ratio": 0.8, "video_mask_ratio": 0.9, "steps": steps, "flops": 1,
            "role": "anchor", "mean_ms": mean_ms, "repeats": 5}  # fmt: skip


def test_segments_compare_runs_and_projected_points_per_batch_size_by_hand(template):
    from bench.report.projection_runs import segment_table, segments

    rows = _rows(template, 100.0, 80.0, 3.0, 0.05)
    full = next(r["recipe"] for r in rows if not r["baseline"])
    base = next(r["recipe"] for r in rows if r["baseline"])
    points = [
        _point(base, 16, 10, 80.0),
        _point(full, 16, 3, 70.0),
        _point(full, 16, 1, 74.0),
        _point(full, 32, 2, 100.0),
    ]
    stored = ValidationRecord.model_validate(
        {"projections": [{"rows": rows, "points": points}], "runs": []}
    )
    steps = StepRecord.model_validate({
        "runs": {  # each run's first step (16 samples: the first epoch here) is left out
            "mavil1": {"recipe": "mavil", "data_seconds": 0.05, "step_seconds": [0.2] + [0.081] * 9,
                       "data_step_seconds": [0.041] + [0.001] * 9, "batch_sizes": [16] * 10},
            "full1": {"recipe": "full", "data_seconds": 0.3,
                      "step_seconds": [0.3, 0.073, 0.073, 0.111, 0.111],
                      "batch_sizes": [16, 16, 16, 32, 32]},  # no per-step data: an older file
        }
    })  # fmt: skip
    found = {(s.recipe, s.batch_size): s for s in segments(stored, steps, first_epoch=16)}
    assert found[("mavil", 16)].run_ms == pytest.approx((80.0,))  # 81 ms less its 1 ms of data
    assert found[("mavil", 16)].steps == 9 and found[("mavil", 16)].ratio == pytest.approx(1.0)
    assert not found[("mavil", 16)].cached_loading
    assert found[("full", 16)].projected_ms == pytest.approx((3 * 70.0 + 74.0) / 4)
    assert found[("full", 16)].ratio == pytest.approx(73.0 / 71.0)  # compute + cached loading
    assert found[("full", 16)].cached_loading and found[("full", 16)].steps == 2
    assert found[("full", 32)].steps == 2 and found[("full", 32)].ratio == pytest.approx(1.11)
    table = segment_table(stored, steps, first_epoch=16)
    assert "runs' step compute + cached loading, ms" in table
    assert "| full recipe | 32 | 2 | 111.0 | 100.0 | 1.110 |" in table
    # with the whole default first epoch (2,000 samples) nothing of these runs is left
    assert segments(stored, steps) == []


def test_replay_segments_by_hand():
    """The replay diagnostic's arithmetic on the real plan of a tiny full recipe: replays
    stepping at exactly the points' means, runs 10% slower at batch 16 only; per batch
    size and over the whole run the ratios are those, and the whole run's mean is the
    plan's steps-weighted mean of the points."""
    from bench.projection.recipes import plan_recipe
    from bench.report.replay_check import ReplayRecord, replay_segments, replay_table, step_points
    from diffmavil.training.config import PretrainConfig

    config = PretrainConfig(
        preset="tiny", variant="cross-attn", masking={"kind": "curriculum"},
        batch={"kind": "adaptive", "batch_size": 8, "multiple": 8}, budget_samples=2048,
    )  # fmt: skip
    recipe = plan_recipe("full", config, 4)
    ms = {(p.batch_size, tuple(p.visible)): 0.01 * (i + 1) for i, p in enumerate(recipe.points)}
    points = {
        f"full/{i}": {"batch": b, "visible": list(v), "steps": 1, "seconds": [s, s]}
        for i, ((b, v), s) in enumerate(ms.items())
    }
    keys = step_points(config)
    assert len({b for b, _ in keys}) >= 2  # the adaptive batch changes size
    replay = [ms[k] for k in keys]
    run = [ms[k] * (1.1 if k[0] == 16 else 1.0) for k in keys]
    record = ReplayRecord(
        date="d", config=config.model_dump(mode="json"), replay1=replay, run1=run,
        run2=run, replay2=replay, points=points,
    )  # fmt: skip
    segments = replay_segments(record)
    assert segments[-1].batch is None and segments[-1].steps == len(keys)
    for segment in segments[:-1]:
        assert segment.ratio("replay") == pytest.approx(1.0)
        assert segment.ratio("run") == pytest.approx(1.1 if segment.batch == 16 else 1.0)
    whole = segments[-1]
    assert whole.points_ms == pytest.approx(1e3 * statistics.fmean(replay))
    run_share = sum(run) / sum(replay)
    assert whole.ratio("run") == pytest.approx(run_share)
    assert "| whole run |" in replay_table(record)


def test_drift_adjusted_errors_take_out_the_reference_rate_by_hand(template):
    from bench.report.projection_runs import drift_adjusted, drift_table

    rows = [{**r, "matmul_gflops_per_s": 200.0} for r in _rows(template, 100.0, 80.0, 3.0, 0.05)]
    runs = [  # (recipe, seconds, reference before, after)
        ("mavil", 110.0, 180.0, 220.0),  # the machine as fast as at the projection: g = 1
        ("mavil", 100.0, 250.0, 250.0),  # faster: g = 200 / 250, the projection scaled down
        ("full", 88.0, 160.0, 160.0),  # slower: g = 200 / 160, scaled up
        ("full", 80.0, 200.0, 200.0),
    ]
    stored = ValidationRecord.model_validate({
        "projections": [{"rows": rows, "environment": {"cpu_model": "AMD EPYC"}}],
        "runs": [{"recipe": r, "wall_clock_seconds": s, "matmul_gflops_before": b,
                  "matmul_gflops_after": a} for r, s, b, a in runs],
    })  # fmt: skip
    found = {d.recipe: d for d in drift_adjusted(stored)}
    assert found["mavil"].errors == pytest.approx((0.10, 0.0))
    assert found["mavil"].adjusted == pytest.approx((0.10, 100.0 / 80.0 - 1.0))
    assert found["full"].errors == pytest.approx((0.10, 0.0))
    assert found["full"].adjusted == pytest.approx((88.0 / 100.0 - 1.0, 0.0))
    assert found["full"].spread == pytest.approx(
        (statistics.stdev([0.10, 0.0]), statistics.stdev([-0.12, 0.0]))
    )
    table = drift_table(stored)
    assert "| MAViL's recipe | 200 | 200, 250 | +10.0%, 0.0% | +10.0%, +25.0% |" in table
    assert single_projection_validation(stored).machine == "AMD EPYC"
    # a record of an earlier round: no reference beside its runs
    older = ValidationRecord.model_validate(_record(template, [100.0, 101.0], [80.0, 81.0]))
    with pytest.raises(ValueError, match="reference matmul rate"):
        drift_adjusted(older)


@pytest.mark.parametrize(
    "model, short",
    [
        ("Intel(R) Xeon(R) Processor", "Intel Xeon"),
        ("Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz", "Intel Xeon Platinum 8480C"),
        ("AMD EPYC", "AMD EPYC"),
        ("AMD EPYC 9654 96-Core Processor", "AMD EPYC 9654 96-Core"),
    ],
)
def test_short_cpu_names(model, short):
    from bench.report.projection_checks import short_cpu_name

    assert short_cpu_name(model) == short


def test_the_saving_bias_over_validations_by_hand(template):
    from bench.report.projection_checks import saving_bias

    full_runs = ([82.0, 84.0, 83.0, 85.0], [81.0, 82.0, 80.0, 83.0], [79.0, 80.0, 78.0, 81.0])
    validations = [
        single_projection_validation(
            ValidationRecord.model_validate(_record(template, [100.0] * 3 + [101.0], runs))
        )
        for runs in full_runs
    ]
    mavil = statistics.fmean([100.0] * 3 + [101.0])
    differences = [(1 - statistics.fmean(r) / mavil) - 0.2 for r in full_runs]
    bias = saving_bias(validations)
    assert bias.differences == pytest.approx(differences)
    half = stats.t.ppf(0.975, 2) * statistics.stdev(differences) / math.sqrt(3)
    mean = statistics.fmean(differences)
    assert (bias.mean.low, bias.mean.estimate, bias.mean.high) == pytest.approx(
        (mean - half, mean, mean + half)
    )
    # two below 0, one above: p = 2 * P(X <= 1 | n = 3) = 2 * 4 / 8 = 1 (capped)
    assert (bias.signs.below, bias.signs.above) == (2, 1)
    assert bias.signs.p_value == pytest.approx(1.0)
    assert bias.describe().startswith("in 2 of 3 validations the runs saved less than projected")
    with pytest.raises(ValueError, match="needs 2 or more"):
        saving_bias(validations[:1])


@pytest.mark.parametrize(
    "differences, below, above, p",
    [
        ([-0.01] * 7, 7, 0, 2 * 0.5**7),
        ([-0.01] * 5 + [0.02] * 2, 5, 2, 2 * (21 + 7 + 1) / 128),
        ([-0.01, 0.0, -0.03, 0.0], 2, 0, 2 * 0.5**2),  # zeros carry no sign
    ],
)
def test_sign_test_by_hand(differences, below, above, p):
    from bench.stats import sign_test

    result = sign_test(differences)
    assert (result.below, result.above, result.n) == (below, above, below + above)
    assert result.p_value == pytest.approx(p)


def test_sign_test_of_zeros_only_is_refused():
    from bench.stats import sign_test

    with pytest.raises(ValueError, match="non-zero"):
        sign_test([0.0, 0.0])
