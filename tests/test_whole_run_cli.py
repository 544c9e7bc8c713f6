"""``diffbench time`` with whole-run options, end to end in-process at tiny on a tiny budget:
the rows are consistent with the plan, the FLOP planner and their own measured points;
bad input exits 2 with one line. Timings are measured, never asserted."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from bench.cli.app import app
from bench.cli.options import OutputFormat
from bench.cli.time_projection import emit_result
from bench.flops import run_saving
from bench.projection.recipes import PointRow, WholeRunResult, WholeRunRow
from diffmavil.config import make_config
from diffmavil.schedules import BatchSchedule, MaskingSchedule, plan_run

runner = CliRunner()
SAMPLES = 56
WHOLE_RUN = [
    "time", "--preset", "tiny", "--masking", "curriculum", "--batch", "adaptive",
    "--batch-size", "8", "--samples", str(SAMPLES), "--threads", "1", "--repeats", "2",
    "--windows", "2", "--warmup", "1", "--matmul-repeats", "1", "--checkpoint-every", "3", "--min-seconds", "0",
    "--data", "synthetic:classes=4,size=24,eval_size=8",
]  # fmt: skip
REQUIRED = (
    "recipe", "variant", "steps", "projected_seconds", "ci_low", "ci_high", "data_seconds",
    "flops", "flop_saving", "time_saving", "peak_memory_mb", "preset", "dtype", "compile",
    "threads", "interpolation_error", "time_per_flop_saving",
)  # fmt: skip


@pytest.fixture(scope="module")
def projection(tmp_path_factory):
    before = torch.get_num_threads()
    out = tmp_path_factory.mktemp("whole-run") / "projection.json"
    try:
        result = runner.invoke(app, [*WHOLE_RUN, "--no-memory", "-f", "json", "-o", str(out)])
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert json.loads(out.read_text()) == payload
    return payload


def test_projection_json_is_typed_schema_4(projection):
    """The JSON is a ``ProjectionResults``: environment in its one spelling, the headline,
    two measurement windows and the interval's parts."""
    from bench.schema import ProjectionResults

    stored = ProjectionResults.model_validate(projection)
    assert stored.schema_version == 4 and stored.environment.torch_threads == 1
    for row in stored.whole_run_rows:
        assert row.windows == 2 and row.interval_method == "windows-t+systematic"
        assert row.window_seconds is not None and len(row.window_seconds) == 2
        assert row.projected_seconds == pytest.approx(sum(row.window_seconds) / 2)
        assert row.statistical_half_seconds is not None and row.systematic_half_seconds is not None
    assert stored.dtype == "fp32" and stored.paper_headline is not None
    assert len(stored.whole_run_rows) == 2 and stored.points
    assert all(row.threads == stored.environment.torch_threads for row in stored.whole_run_rows)


def test_rows_follow_the_plan_and_the_flop_planner(projection):
    rows = {r["recipe"]: r for r in projection["rows"] if r["kind"] == "whole_run"}
    assert set(rows) == {"mavil", "cross-attn+curriculum+adaptive/tokens"}
    base, ours = rows["mavil"], rows["cross-attn+curriculum+adaptive/tokens"]
    for row in rows.values():
        assert all(key in row for key in REQUIRED)
        assert (row["preset"], row["dtype"], row["compile"], row["threads"]) == (
            "tiny", "fp32", False, 1,
        )  # fmt: skip
        assert row["samples"] == SAMPLES
        assert row["projected_seconds"] == pytest.approx(
            row["compute_seconds"] + row["data_seconds"] + row["overhead_seconds"], rel=1e-9
        )
        assert row["ci_low"] <= row["projected_seconds"] <= row["ci_high"]
        assert row["data_seconds"] > 0 and row["overhead_seconds"] > 0
        assert row["peak_memory_mb"] is None  # --no-memory
    masking = MaskingSchedule(kind="curriculum")
    batch = BatchSchedule(kind="adaptive", batch_size=8)
    config = make_config("tiny", "cross-attn")
    plan = plan_run(config, masking, batch, SAMPLES)
    assert ours["steps"] == len(plan) and base["steps"] == SAMPLES // 8
    flops = run_saving(config, masking, batch, SAMPLES)
    assert ours["flops"] == flops["run"]["total_flops"]
    assert base["flops"] == flops["baseline"]["total_flops"]
    assert ours["flop_saving"] == pytest.approx(flops["saving"])
    assert ours["time_saving"] == pytest.approx(
        1 - ours["projected_seconds"] / base["projected_seconds"]
    )
    assert ours["time_saving_ci_low"] <= ours["time_saving"] <= ours["time_saving_ci_high"]
    assert base["time_saving"] is None and base["flop_saving"] is None
    # checkpoints after steps 3, 6, ... and the last; one logged row per step
    assert ours["checkpoints"] == len(plan) // 3 + (1 if len(plan) % 3 else 0)
    assert ours["logged_rows"] == len(plan)


def test_compute_is_the_plan_integral_of_the_measured_points(projection):
    """At tiny every point is measured: compute = sum of steps x mean step seconds."""
    for recipe in ("mavil", "cross-attn+curriculum+adaptive/tokens"):
        row = next(r for r in projection["rows"] if r.get("recipe") == recipe)
        points = [
            r
            for r in projection["rows"]
            if r["kind"] == "whole_run_point" and r["recipe"] == recipe
        ]
        assert row["measured_points"] == row["points"] == len(points)
        assert sum(p["steps"] for p in points) == row["steps"]
        assert {p["role"] for p in points} == {"anchor"}
        integral = sum(p["steps"] * p["mean_ms"] / 1e3 for p in points)
        assert row["compute_seconds"] == pytest.approx(integral, rel=1e-5)
        assert row["interpolation_error"] == 0.0 and row["interpolated_share"] == 0.0
        assert all(p["repeats"] == 4 for p in points)  # 2 rounds in each of 2 windows


def test_table_and_csv_render_the_same_rows(projection, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    rows = [WholeRunRow.model_validate(r) for r in projection["rows"] if r["kind"] == "whole_run"]
    points = [PointRow.model_validate(r) for r in projection["rows"] if r["kind"] != "whole_run"]
    result = WholeRunResult(rows=rows, points=points, environment=projection["environment"])
    emit_result(result, OutputFormat.csv, None)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("kind,recipe,baseline,variant")
    assert len(lines) == 3 and all(line.startswith("whole_run,") for line in lines[1:])
    emit_result(result, OutputFormat.table, None)
    text = capsys.readouterr().out
    assert "Projected whole-run wall-clock @ tiny" in text and "cross-attn+curriculum" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--masking", "ramp"], "'ramp' is not one of 'fixed', 'curriculum'"),
        (["--batch", "adaptive", "--batch-rule", "x"], "'x' is not one of 'tokens', 'flops'"),
        (["--masking", "fixed", "--samples", "-5"], "samples: -5.0: expected a positive whole"),
        (["--masking", "fixed", "--anchors", "1"], "--anchors 1: at least 2"),
        (["--masking", "fixed", "--repeats", "1"], "--repeats 1: a whole-run interval needs"),
        (["--masking", "fixed", "--windows", "0"], "--windows 0: at least 1"),
        (["--masking", "fixed", "--dtype", "bf16"], "dtype=bf16"),
        (["--masking", "fixed", "--checkpoint-every", "0"], "--checkpoint-every 0"),
        (["--batch", "adaptive", "--batch-size", "12"], "not a multiple of multiple=8"),
        (["--masking", "fixed", "--data", "nonsense:x"], "nonsense"),
    ],
)
def test_whole_run_bad_input_exits_2(args, message):
    result = runner.invoke(app, ["time", "--preset", "tiny", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_peak_memory_of_one_recipe_does_not_hide_the_next():
    """Each recipe's probe runs in its own process: a small recipe measured after a large
    one reports its own, smaller peak (in one process the resident peak only grows)."""
    from bench.projection.measure import measure_peak_memory
    from bench.projection.recipes import plan_recipe
    from diffmavil.training.config import PretrainConfig

    def recipe(batch: int):
        config = PretrainConfig(
            preset="tiny", variant="mavil", budget_samples=batch, batch={"batch_size": batch},
            threads=1,
        )  # fmt: skip
        return plan_recipe(f"b{batch}", config, 4)

    large, kind = measure_peak_memory(recipe(48), compile=False)
    small, _ = measure_peak_memory(recipe(2), compile=False)
    assert kind == "process_vm_hwm"
    assert 0 < small < large
