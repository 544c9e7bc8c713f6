"""Grids that survive a corrupt checkpoint and two invocations on one output directory."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from bench.ablate.results import read_results
from bench.cli import app

DATA = "synthetic:classes=4,size=16,eval_size=8"


def _grid(tmp_path: Path, rows: dict, budget: int = 8) -> Path:
    document = {
        "name": "reliable",
        "base": {
            "preset": "tiny",
            "variant": "mavil",
            "data": DATA,
            "budget_samples": budget,
            "batch": {"batch_size": 4},
            "threads": 1,
            "checkpoint_every": 1,
        },
        "rows": rows,
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _ablate(grid: Path, out: Path):
    return CliRunner().invoke(
        app, ["ablate", "--grid", str(grid), "--out", str(out), "--no-progress", "--no-report"]
    )


def test_a_corrupt_checkpoint_does_not_fail_its_row(tmp_path):
    grid = _grid(tmp_path, {"only": {"baseline": True}})
    out = tmp_path / "out"
    first = _ablate(grid, out)
    assert first.exit_code == 0, first.output
    before = read_results(out)["records"][0]
    run_dir = Path(before["run_dir"])
    # the run as an interrupted one whose checkpoint was then damaged (a partial copy)
    (run_dir / "record.json").unlink()
    (run_dir / "summary.json").unlink()
    checkpoint = run_dir / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    again = _ablate(grid, out)
    assert again.exit_code == 0, again.output
    assert f"warning: {checkpoint}: unreadable checkpoint" in again.output
    assert "moved aside to checkpoint.pt.bad-1; starting over" in again.output
    after = read_results(out)["records"][0]
    assert after["status"] == "completed"
    for key in ("steps", "samples", "total_flops", "final_losses"):
        assert after[key] == before[key], key
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["discarded_checkpoints"] == [str(run_dir / "checkpoint.pt.bad-1")]
