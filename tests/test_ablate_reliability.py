"""Grids that survive a corrupt checkpoint and two invocations on one output directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from bench.ablate.claims import process_start
from bench.ablate.store import read_results
from bench.cli.app import app
from tests.test_ablate_run import _small_grid

ROOT = Path(__file__).resolve().parents[1]


def _grid(tmp_path: Path, rows: dict) -> Path:
    """test_ablate_run's small grid with two steps of 4 samples per run."""
    return _small_grid(tmp_path, rows, budget=8, batch={"batch_size": 4})


def _ablate(grid: Path, out: Path):
    return CliRunner().invoke(
        app, ["ablate", "--grid", str(grid), "--out", str(out), "--no-progress", "--no-report"]
    )


def test_a_corrupt_checkpoint_does_not_fail_its_row(tmp_path):
    grid = _grid(tmp_path, {"only": {"baseline": True}})
    out = tmp_path / "out"
    first = _ablate(grid, out)
    assert first.exit_code == 0, first.output
    before = read_results(out).model_dump()["records"][0]
    run_dir = out / before["run_dir"]  # results name it relative to the grid's --out
    # the run as an interrupted one whose checkpoint was then damaged (a partial copy)
    (run_dir / "record.json").unlink()
    (run_dir / "summary.json").unlink()
    checkpoint = run_dir / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    again = _ablate(grid, out)
    assert again.exit_code == 0, again.output
    assert f"warning: {checkpoint}: unreadable checkpoint" in again.output
    assert "moved aside to checkpoint.pt.bad-1; starting over" in again.output
    after = read_results(out).model_dump()["records"][0]
    assert after["status"] == "completed"
    for key in ("steps", "samples", "total_flops", "final_losses"):
        assert after[key] == before[key], key
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["discarded_checkpoints"] == [str(run_dir / "checkpoint.pt.bad-1")]


def _tasks_by_row(grid: Path, out: Path) -> dict:
    from bench.ablate.grid import load_grid
    from bench.ablate.orchestrate import build_tasks

    return {task.row: task for task in build_tasks(load_grid(grid), out)}


def test_a_run_claimed_by_a_live_process_is_skipped_reported_and_later_taken_over(tmp_path):
    grid = _grid(tmp_path, {"a": {"baseline": True}, "b": {"variant": "cross-attn"}})
    out = tmp_path / "out"
    held = _tasks_by_row(grid, out)["b"]
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        run_dir = Path(held.run_dir)
        run_dir.mkdir(parents=True)
        claim = {
            "host": socket.gethostname(),
            "pid": owner.pid,
            "process_start": process_start(owner.pid),
            "token": "held-elsewhere",
            "claimed_at": time.time(),
        }
        (run_dir / "claim.1.json").write_text(json.dumps(claim))
        first = _ablate(grid, out)
        assert first.exit_code == 0, first.output
        holder = f"{socket.gethostname()} pid {owner.pid}"
        assert f"b seed 0 ({held.run_id}): skipped (claimed by {holder}" in first.output
        assert "1 run(s), 0 skipped as done, 1 claimed by another process, 0 failed" in (
            first.output
        )
        assert f"  b seed 0 ({held.run_id}): claimed by {holder}" in first.output  # the list
        payload = read_results(out).model_dump()
        assert [r["row"] for r in payload["records"]] == ["a"] and not payload["complete"]
        assert not (run_dir / "record.json").exists()
    finally:
        owner.kill()
        owner.wait()
    second = _ablate(grid, out)  # the holder died: its claim is stale at once
    assert second.exit_code == 0, second.output
    assert f"took over the claim of {holder}: its process {owner.pid}" in second.output
    payload = read_results(out).model_dump()
    assert [r["row"] for r in payload["records"]] == ["a", "b"] and payload["complete"]
    assert all(r["status"] == "completed" for r in payload["records"])
    assert not list(out.rglob("claim.*.json"))


def _intervals_intersect(a: dict, b: dict) -> bool:
    return a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]


def test_two_invocations_on_one_output_directory_run_each_run_exactly_once(tmp_path):
    rows = {
        "r1": {"baseline": True},
        "r2": {"variant": "cross-attn"},
        "r3": {"variant": "diff-self"},
    }
    grid = _grid(tmp_path, rows)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench.cli.app", "ablate", "--grid", str(grid), "--out"]
    command += [str(out), "--no-progress", "--no-report", "--format", "json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"}
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()
    logs = "\n".join(stderr.decode() for _, stderr in outputs)
    tasks = _tasks_by_row(grid, out)
    for row, task in tasks.items():  # each run executed by exactly one invocation
        assert logs.count(f"{row} seed 0 ({task.run_id}): completed") == 1, logs
    payload = read_results(out).model_dump()
    assert payload["complete"] and [r["row"] for r in payload["records"]] == list(rows)
    records = payload["records"]
    assert {r["execution"]["pid"] for r in records} <= {p.pid for p in processes}
    for record in records:
        assert record["status"] == "completed" and record["steps"] == 2
        run_dir = out / record["run_dir"]
        steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
        assert steps == [0, 1]
        assert len(list((run_dir / "tb").glob("events.out.tfevents.*"))) == 1  # one execution
        # wall-clock comparable exactly when no other run of this host overlapped it
        overlapped = sorted(
            Path(other["run_dir"]).name
            for other in records
            if other is not record and _intervals_intersect(record["execution"], other["execution"])
        )
        assert record["wall_clock_comparable"] is (not overlapped)
        assert record.get("overlapped_runs", []) == overlapped
    assert not list(out.rglob("claim.*.json"))
