"""The machine's history of projections (``bench.projection.history``): its intervals
against hand computation, the file's round trip and damage, and ``diffbench time
--history`` end to end (a projection joins the history; with 5 earlier projections of a
setting its seconds' interval comes from them)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from scipy import stats
from typer.testing import CliRunner

from bench.cli.app import app
from bench.cli.time_projection import render_table
from bench.errors import BadInput
from bench.projection.history import (
    HistoryEntry,
    append_history,
    entries_of,
    read_history,
    setting_key,
    with_history,
)
from bench.projection.recipes import WholeRunResult
from bench.schema import ProjectionResults
from tests.test_whole_run_cli import WHOLE_RUN

runner = CliRunner()
ENV = {"cpu_model": "Test CPU", "gpu_name": None}


def _row(projection: dict, **update):
    from bench.schema.projection import WholeRunRow

    row = next(r for r in projection["rows"] if r["kind"] == "whole_run")
    return WholeRunRow.model_validate({**row, **update})


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One tiny projection, made with a history file (empty before it)."""
    folder = tmp_path_factory.mktemp("history")
    before = torch.get_num_threads()
    try:
        args = [*WHOLE_RUN, "--no-memory", "-f", "json", "--history", str(folder / "h.jsonl")]
        result = runner.invoke(app, args)
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    return folder, json.loads(result.stdout)


def test_history_interval_by_hand(stored):
    """Five earlier projections 100, 110, 90, 105, 95 s (mean 100, sd sqrt(62.5)): a new
    estimate of 120 s with a 5 s interpolation half-width gets
    120 +- hypot(t(0.975, 4) * sqrt(62.5) / 100 * 120, 5)."""
    _, projection = stored
    row = _row(projection, projected_seconds=120.0, systematic_half_seconds=5.0)
    key = setting_key(row, "Test CPU")
    history = [
        HistoryEntry(date="d", setting=key, projected_seconds=s) for s in (100, 110, 90, 105, 95)
    ]
    history.append(
        HistoryEntry(date="d", setting=key.replace("Test CPU", "Other"), projected_seconds=1)
    )
    (out,) = with_history([row], ENV, history)
    drift = stats.t.ppf(0.975, 4) * math.sqrt(62.5) / 100 * 120.0
    half = math.hypot(drift, 5.0)
    assert out.interval_method == "history-t+systematic" and out.history_projections == 5
    assert out.ci_low == pytest.approx(120.0 - half) and out.ci_high == pytest.approx(120.0 + half)
    assert out.drift_half_seconds == pytest.approx(drift)
    assert out.projected_seconds == 120.0 and out.time_saving_ci_low == row.time_saving_ci_low


def test_too_short_a_history_keeps_the_windowed_interval(stored):
    _, projection = stored
    row = _row(projection)
    history = [HistoryEntry(date="d", setting=setting_key(row, "Test CPU"), projected_seconds=9)]
    other = [HistoryEntry(date="d", setting=setting_key(row, "Other CPU"), projected_seconds=9)] * 5
    (out,) = with_history([row], ENV, history + other)
    assert out.history_projections == 1 and out.interval_method == row.interval_method
    assert (out.ci_low, out.ci_high) == (row.ci_low, row.ci_high)


def test_file_round_trip_and_damage(tmp_path, stored):
    _, projection = stored
    row = _row(projection)
    path = tmp_path / "sub" / "h.jsonl"
    assert read_history(path) == []
    entries = entries_of([row], ENV, date="2026-12-06T00:00:00+00:00")
    append_history(path, entries)
    with path.open("a") as handle:
        bad = entries[0].model_dump() | {"projected_seconds": float("nan")}
        handle.write(json.dumps(bad) + "\n")  # NaN seconds: not an entry
        handle.write('{"date": "torn')  # a killed write's last line
    append_history(path, entries)
    assert read_history(path) == entries * 2
    with pytest.raises(BadInput, match="is a directory"):
        read_history(tmp_path)


def test_cli_history_end_to_end(stored):
    """The first projection had no history (windowed intervals) and joined it; two more
    entries of each setting (5 in all) make the next projection's seconds' interval the history's."""
    folder, first = stored
    path = folder / "h.jsonl"
    entries = read_history(path)
    assert len(entries) == 2  # one per recipe
    for row in ProjectionResults.model_validate(first).whole_run_rows:
        assert row.history_projections == 0 and row.interval_method == "windows-t+systematic"
    factors = (1.1, 0.9, 1.05, 0.95)  # 5 earlier projections of each setting in all
    append_history(path, [e.model_copy(update={"projected_seconds": e.projected_seconds * f})
                          for f in factors for e in entries])  # fmt: skip
    before = torch.get_num_threads()
    try:
        result = runner.invoke(
            app, [*WHOLE_RUN, "--no-memory", "-f", "json", "--history", str(path)]
        )
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    rows = ProjectionResults.model_validate(json.loads(result.stdout)).whole_run_rows
    for row, entry in zip(rows, entries, strict=True):
        earlier = [entry.projected_seconds * f for f in (1.0, *factors)]
        spread = stats.tstd(earlier) / (sum(earlier) / 5) * row.projected_seconds
        half = math.hypot(stats.t.ppf(0.975, 4) * spread, row.systematic_half_seconds)
        assert row.history_projections == 5 and row.interval_method == "history-t+systematic"
        assert row.ci_high - row.projected_seconds == pytest.approx(half)
        assert row.time_saving_ci_low is None or row.windows == 2
    assert len(read_history(path)) == 12
    environment = json.loads(result.stdout)["environment"]
    table = render_table(WholeRunResult(rows=rows, points=[], environment=environment))
    assert "seconds' intervals from this machine's history (5 earlier projections" in table.title


def test_cli_history_directory_is_bad_input(tmp_path):
    result = runner.invoke(app, [*WHOLE_RUN, "--no-memory", "--history", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output
