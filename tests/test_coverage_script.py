"""reports/whole-run/coverage.py score: the coverage check of stored projections, end to end
(the projections here are made up around a known spread; the scoring is bench.stats')."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.migrate import load_projection

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "reports" / "whole-run" / "coverage.py"


def _rows(template: list[dict], seconds: dict[str, float], half: float) -> list[dict]:
    rows = []
    for row in template:
        name = "full" if row["recipe"] == "diffmavil" else row["recipe"]
        value = seconds[name]
        row = {**row, "recipe": name, "projected_seconds": value,
               "ci_low": value - half, "ci_high": value + half}  # fmt: skip
        if name == "full":
            saving = 1 - value / seconds["mavil"]
            row.update(time_saving=saving, time_saving_ci_low=saving - 0.01,
                       time_saving_ci_high=saving + 0.01)  # fmt: skip
        rows.append(row)
    return rows


def test_score_prints_each_quantity_and_its_verdict(tmp_path):
    path = ROOT / "reports" / "table2" / "whole-run.json"
    stored = load_projection(path, json.loads(path.read_text()))
    template = [
        r.model_dump(mode="json")
        for r in stored.whole_run_rows
        if r.recipe in ("mavil", "diffmavil")
    ]
    projections = []
    for i in range(12):
        offset = (i % 4) - 1.5  # sd of the estimates: about 1.17 s
        seconds = {"mavil": 400.0 + offset, "full": 330.0 + offset}
        projections.append({"window": f"w{i // 4}", "rows": _rows(template, seconds, 2.0)})
    file = tmp_path / "coverage.json"
    file.write_text(json.dumps({"projections": projections}))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "score", str(file)], capture_output=True, text=True,
        cwd=ROOT, check=True,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0].startswith("12 projections in 3 windows")
    mavil = next(line for line in lines if line.startswith("| MAViL's recipe, seconds"))
    assert "| 12 of 12 |" in mavil and "| 2.00 |" in mavil and "**passes**" in mavil
    saving = next(line for line in lines if line.startswith("| saving, %"))
    assert "**fails**" in saving  # the savings' intervals (1 point) are wide for their spread
