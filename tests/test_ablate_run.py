"""diffbench ablate end to end: smoke.yaml in-process and through submitit's local executor,
resume after SIGKILL, a failing row, local workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bench.ablate.grid import load_grid
from bench.ablate.plan import plan_config
from bench.ablate.store import read_results
from bench.cli.app import app
from tests.conftest import kill_when

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "ablations" / "smoke.yaml"
DATA = "synthetic:classes=4,size=16,eval_size=8"


def _small_grid(tmp_path: Path, rows: dict, budget: int = 16, **base) -> Path:
    document = {
        "name": "small",
        "base": {
            "preset": "tiny",
            "variant": "mavil",
            "data": DATA,
            "budget_samples": budget,
            "batch": {"batch_size": 8},
            "threads": 1,
            "checkpoint_every": 1,
            **base,
        },
        "rows": rows,
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _all_json_parses(root: Path) -> None:
    for path in root.rglob("*.json"):
        json.loads(path.read_text())
    for path in root.rglob("metrics.jsonl"):
        steps = [json.loads(line)["step"] for line in path.read_text().splitlines()]
        assert steps == list(range(len(steps))), path  # no step twice, none missing
    assert not list(root.rglob("*.tmp"))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "out"
    started = time.perf_counter()
    result = CliRunner().invoke(
        app, ["ablate", "--grid", str(SMOKE), "--out", str(out), "--no-progress"]
    )
    return result, out, time.perf_counter() - started


def test_smoke_grid_end_to_end_in_process(smoke_run):
    result, out, _ = smoke_run
    assert result.exit_code == 0, result.output
    payload = read_results(out)
    grid = load_grid(SMOKE)
    records = [r.model_dump() for r in payload.records]  # typed, then as plain values
    rows = [r for r in records if r["kind"] == "row"]
    controls = [r for r in records if r["kind"] == "control"]
    assert [r["row"] for r in rows] == [row.name for row in grid.rows]
    # every variant has the same encoders: one random-init control serves the 4 variants
    assert sorted(r["row"] for r in controls) == ["control: fbank", "control: random-init"]
    assert payload.complete and payload.environment.torch_threads >= 1
    for record in records:
        assert record["status"] == "completed", record
        assert 0.0 <= record["probe"]["accuracy"] <= 1.0
        # named relative to the grid's output directory, whatever --out was
        assert (
            record["run_dir"] == f"runs/{record['run_id']}" and (out / record["run_dir"]).is_dir()
        )
    for record in rows:
        assert record["total_flops"] == record["planned_flops"] > 0  # the steps taken = plan
        assert record["total_flops"] == sum(record["flops_by_component"].values())
        assert record["samples"] == record["budget_samples"]
        assert record["wall_clock_seconds"] > 0 and record["wall_clock_comparable"] is True
        assert "loss" in record["final_losses"] and record["environment"]["git_commit"] != ""
    by_row = {r["row"]: r for r in rows}
    assert by_row["mavil@diffmavil-flops"]["budget_samples"] < by_row["mavil"]["budget_samples"]
    assert by_row["diffmavil"]["steps"] <= by_row["cross-attn+curriculum"]["steps"]
    # the aggregate agrees with the records
    aggregate = {r["row"]: r for r in json.loads((out / "aggregate.json").read_text())["rows"]}
    base_flops = by_row["mavil"]["total_flops"]
    for name, record in by_row.items():
        line = aggregate[name]
        assert line["n"] == 1 and line["single_seed"] is True
        assert line["total_flops_mean"] == record["total_flops"]
        assert line["delta_flops_pct"] == pytest.approx(
            100 * (record["total_flops"] - base_flops) / base_flops
        )
    assert aggregate["mavil"]["baseline"] is True
    assert (out / "results.csv").exists() and (out / "aggregate.csv").exists()
    assert "mavil (baseline, 1 seed)" in result.output  # the printed aggregate table
    try:
        import bench.report  # noqa: F401
    except ImportError:
        pass
    else:  # the report is rendered at the end of the grid
        assert (out / "report" / "report.md").exists() and (out / "report" / "report.html").exists()
    _all_json_parses(out)


def test_rerunning_a_finished_grid_skips_every_run(smoke_run):
    _, out, _ = smoke_run
    before = (out / "results.json").read_text()
    result = CliRunner().invoke(
        app, ["ablate", "--grid", str(SMOKE), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "0 run(s), 9 skipped as done" in result.output
    assert [r["run_id"] for r in json.loads(before)["records"]] == [
        r.run_id for r in read_results(out).records
    ]


def test_smoke_grid_through_submitit_local_executor(tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "ablate",
            "--grid",
            str(SMOKE),
            "--out",
            str(out),
            "--executor",
            "submitit",
            "--submitit-cluster",
            "local",
            "--rows",
            "mavil",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    records = read_results(out).records
    # one row (the baseline) and its controls: three submitit jobs
    assert sorted(r.row for r in records) == sorted(
        ["mavil", "control: random-init", "control: fbank"]
    )
    assert all(r.status == "completed" for r in records)
    row = next(r.model_dump() for r in records if r.kind == "row")
    assert row["wall_clock_comparable"] is False  # local jobs run at once, sharing the CPU
    assert row["total_flops"] == row["planned_flops"] > 0
    # each run was a submitit job of its own, with its own log
    assert len(list((out / "submitit").glob("*_log.out"))) == len(records)
    _all_json_parses(out)


def test_a_failing_row_is_recorded_and_the_grid_goes_on(tmp_path):
    grid = _small_grid(
        tmp_path,
        {
            "good": {"baseline": True},
            "nan": {"inject_nan_at_step": 1},
            "after": {"variant": "cross-attn"},
        },
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["ablate", "--grid", str(grid), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 1, result.output  # everything written, failure signalled
    records = {r.row: r.model_dump() for r in read_results(out).records}
    assert records["nan"]["status"] == "failed"
    assert "non-finite loss at step 1" in records["nan"]["failure"]
    assert records["nan"]["steps"] == 2 and records["nan"]["total_flops"] > 0
    assert records["good"]["status"] == records["after"]["status"] == "completed"
    aggregate = {r["row"]: r for r in json.loads((out / "aggregate.json").read_text())["rows"]}
    assert aggregate["nan"]["status"] == "failed" and aggregate["nan"]["n"] == 0


def test_local_workers_mark_wall_clock_not_comparable(tmp_path):
    grid = _small_grid(tmp_path, {"a": {}, "b": {"variant": "cross-attn"}}, budget=8)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["ablate", "--grid", str(grid), "--out", str(out), "--workers", "2", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    payload = read_results(out)
    assert payload.executor == "local x2"
    records = payload.records
    assert [r.row for r in records] == ["a", "b"]
    assert all(r.status == "completed" and r.wall_clock_comparable is False for r in records)


def test_resume_after_sigkill_runs_every_row_exactly_once(tmp_path):
    rows = {
        "first": {"baseline": True},
        "second": {"variant": "diff-self"},
        "third": {"variant": "cross-attn"},
    }
    grid = _small_grid(tmp_path, rows, budget=32)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.cli.app",
            "ablate",
            "--grid",
            str(grid),
            "--out",
            str(out),
            "--no-progress",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    loaded = load_grid(grid)
    first_dir = out / "runs"
    # the first row's summary appears: kill mid-grid
    kill_when(process, lambda: bool(list(first_dir.glob("*/summary.json"))), timeout=180)
    summaries_before = list(first_dir.glob("*/summary.json"))
    assert len(summaries_before) < len(rows)  # really interrupted mid-way

    result = CliRunner().invoke(
        app, ["ablate", "--grid", str(grid), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    records = read_results(out).records
    assert [r.row for r in records] == list(rows)  # every row exactly once
    assert all(r.status == "completed" for r in records)
    assert len(list(first_dir.iterdir())) == len(rows)  # one run directory per row
    for record, row in zip(records, loaded.rows, strict=True):
        assert record.steps == plan_config(row.config).steps
        assert record.samples == row.config.budget_samples
    _all_json_parses(out)


def test_run_time_times_each_row_model(tmp_path):
    pytest.importorskip("bench.timing.benchmark")
    grid = _small_grid(tmp_path, {"a": {}}, budget=8)
    document = yaml.safe_load(grid.read_text())
    document["run"] = {
        "time": {
            "batch_size": 2,
            "repeats": 2,
            "warmup": 0,
            "components": False,
            "matmul_repeats": 1,
        }
    }
    grid.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["ablate", "--grid", str(grid), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    record = read_results(out).records[0]
    step = [r for r in record.timing if r.component == "train_step" and r.phase == "step"]
    assert len(step) == 1 and step[0].median_ms > 0 and step[0].batch_size == 2
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert "time.step_ms" in header
