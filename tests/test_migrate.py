"""Typed results (``bench.schema``) and the schema 1 -> 2 migration (``bench.migrate``; a
grid's results.json goes on to 3 and 4, tests/test_results_schema.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli.app import app
from bench.migrate import (
    load_flops,
    load_grid_results,
    load_time,
    migrate_environment,
    migrate_path,
)
from bench.report.render import render_report
from bench.schema import GridResults

ROOT = Path(__file__).resolve().parents[1]
# reports/table2-flops/results.json as committed at schema_version 1 (before its migration)
COMMITTED = ROOT / "tests" / "fixtures" / "table2-flops-results-v1.json"
# its report as rendered from schema 1 by the code before the migration (``diffbench report``)
REPORT_V1 = ROOT / "tests" / "fixtures" / "table2-flops-report-v1.md"
ENVIRONMENT_KEYS = {"environment"}


def _numbers(value, path=""):
    """Every number in a JSON value, by its path (the environment block left out)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ENVIRONMENT_KEYS:
                continue
            out.update(_numbers(item, f"{path}.{key}"))
        return out
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(_numbers(item, f"{path}[{index}]"))
        return out
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {path: value}
    return {}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """A copy of a committed schema 1 results file, migrated by the CLI."""
    folder = tmp_path_factory.mktemp("committed")
    shutil.copy(COMMITTED, folder / "results.json")
    before = json.loads((folder / "results.json").read_text())
    result = CliRunner().invoke(app, ["migrate", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["file"] == str(folder / "results.json")
    return folder, before, json.loads((folder / "results.json").read_text())


def test_committed_results_are_schema_2_with_the_same_numbers():
    """The committed report's results.json is the migrated fixture, number for number."""
    committed = json.loads((ROOT / "reports" / "table2-flops" / "results.json").read_text())
    before = json.loads(COMMITTED.read_text())
    assert before["schema_version"] == 1 and committed["schema_version"] == 2
    old = _numbers(before)
    old.pop(".schema_version")
    assert {k: _numbers(committed)[k] for k in old} == old


def test_migration_keeps_every_number(migrated):
    _, before, after = migrated
    assert after["schema_version"] == 4  # a grid's results.json: 1 -> 2 -> 3 -> 4
    old, new = _numbers(before), _numbers(after)
    old.pop(".schema_version")
    assert {k: new[k] for k in old} == old  # every number of 1 is carried over as is
    assert set(new) - set(old) <= {
        k for k in new if k.endswith("schema_version") or k.startswith(".paper_headline")
    }


def test_migration_renames_the_environment(migrated):
    _, before, after = migrated
    env = after["environment"]
    assert env["torch_threads"] == before["environment"]["torch_threads"]
    assert env["date"] == before["environment"]["date"]
    assert env["torch_version"] == before["environment"]["packages"]["torch"]
    assert env["schema_version"] == 2
    for record in after["records"]:
        assert record["schema_version"] == 2 and record["environment"]["schema_version"] == 2


def test_migration_is_once_and_reading_1_equals_reading_2(migrated, tmp_path):
    folder, before, after = migrated
    assert migrate_path(folder) == []  # already current: nothing rewritten
    shutil.copy(COMMITTED, tmp_path / "results.json")
    on_read = load_grid_results(tmp_path / "results.json")  # schema 1, migrated in memory
    assert on_read == GridResults.model_validate(after)
    assert json.loads((tmp_path / "results.json").read_text()) == before  # not rewritten


def test_paper_headline_is_stored_and_consistent(migrated):
    _, _, after = migrated
    headline = GridResults.model_validate(after).paper_headline
    flops = next(f for f in headline.figures if f.figure == "flops_saving")
    assert flops.ours_base == pytest.approx(1 - flops.run_flops / flops.baseline_flops)
    assert flops.paper == 0.32 and flops.samples == headline.headline_samples
    given = next(r for r in headline.sensitivity if r.assumption == "as given")
    assert given.saving == pytest.approx(1 - given.run_flops / given.baseline_flops)
    assert headline.fixed_mask_ratio == (0.8, 0.9)


def test_environment_spellings_of_1_become_one():
    timing = {"timestamp": "2026-01-01T00:00:00", "threads": 3, "python_version": "3.11.7"}
    pretrain = {"date": "2026-01-01T00:00:00", "torch_threads": 3, "python": "3.11.7"}
    for env in (timing, pretrain):
        migrated = migrate_environment({**env, "device": "cpu", "device_name": "x"})
        assert migrated["date"] == "2026-01-01T00:00:00"
        assert migrated["torch_threads"] == 3 and migrated["python"] == "3.11.7"
        assert "threads" not in migrated and "timestamp" not in migrated


def test_flops_and_time_of_1_are_read(tmp_path):
    whole_run = [
        {
            "variant": "cross-attn",
            "preset": "tiny",
            "component": "total",
            "run_flops": 8,
            "baseline_flops": 10,
            "saving_percent": 20.0,
        }
    ]
    flops = load_flops(tmp_path / "f.json", whole_run)
    assert flops.flops_kind == "whole-run" and flops.rows[0].run_flops == 8
    assert flops.paper_headline is not None
    time_1 = {
        "environment": {"device": "cpu", "device_name": "x", "threads": 2, "dtype": "fp32"},
        "configs": {},
        "rows": [
            {
                "kind": "step",
                "variant": "mavil",
                "implementation": "ours",
                "component": "train_step",
                "phase": "step",
                "median_ms": 5.0,
                "threads": 2,
                "timestamp": "t",
            }
        ],
    }
    times = load_time(tmp_path / "t.json", time_1)
    assert times.environment.torch_threads == 2 and times.dtype == "fp32"
    assert times.rows[0].torch_threads == 2 and times.rows[0].median_ms == 5.0


def test_unknown_version_is_one_line_exit_2(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 5, "records": []}))
    result = CliRunner().invoke(app, ["migrate", str(tmp_path)])
    assert result.exit_code == 2
    assert "schema_version 5" in result.stderr and len(result.stderr.splitlines()) == 1


ENVIRONMENT_TABLE = "Where the results and this report were produced"
HEADLINE_TABLE = "Pre-training saving of DiffMAViL vs MAViL"


def _tables(markdown: str) -> dict[str, list[str]]:
    """A markdown report's tables: title (the bold line above a table) -> its lines."""
    tables: dict[str, list[str]] = {}
    title = ""
    for line in markdown.splitlines():
        bold = re.fullmatch(r"\*\*(.+)\*\*", line)
        if bold:
            title = bold.group(1)
        elif line.startswith("|"):
            tables.setdefault(title, []).append(line)
    return tables


@pytest.fixture(scope="module")
def reports(migrated, tmp_path_factory):
    """The report of the committed schema 1 file (migrated on read) and of its migrated copy."""
    folder, _, _ = migrated
    v1 = tmp_path_factory.mktemp("v1")
    shutil.copy(COMMITTED, v1 / "results.json")
    out = tmp_path_factory.mktemp("reports")
    before = render_report(v1, ("md",), out / "before")["md"].read_text()
    after = render_report(folder, ("md",), out / "after")["md"].read_text()
    return _tables(before), _tables(after)


def test_report_before_and_after_migration_shows_the_same_numbers(reports):
    before, after = reports
    assert {HEADLINE_TABLE, ENVIRONMENT_TABLE} <= set(after) and len(after) >= 5
    before.pop(ENVIRONMENT_TABLE)  # "this report" column: the date and command of each run
    after.pop(ENVIRONMENT_TABLE)
    assert after == before


def test_report_after_migration_has_the_schema_1_reports_numbers(reports):
    """The report the code before the migration rendered from the committed schema 1 file
    (``REPORT_V1``: main at the port, reports/table2-flops) and the report of the migrated
    results agree table for table: runs, FLOPs per component, the paper's headline and the
    sensitivity sweep (now read from the stored ``paper_headline``, not computed)."""
    _, after = reports
    old = _tables(REPORT_V1.read_text())
    old.pop(ENVIRONMENT_TABLE)
    assert HEADLINE_TABLE in old and len(old) >= 4
    assert {title: after[title] for title in old} == old


def test_a_projection_of_2_reads_as_one_window_and_migrates_once_to_4(tmp_path):
    """Schema 2 (one measurement window, its block bootstrap) -> 4: every number kept, the
    rows say windows 1 and interval method block-bootstrap; `diffbench migrate` rewrites it
    once and a second run leaves it alone."""
    from bench.migrate import load_projection
    from bench.schema import PROJECTION_SCHEMA_VERSION

    source = ROOT / "reports" / "table2" / "whole-run.json"
    payload = json.loads(source.read_text())
    assert payload["schema_version"] == 2
    stored = load_projection(source, payload)
    assert stored.schema_version == PROJECTION_SCHEMA_VERSION == 4
    before = {r["recipe"]: r for r in payload["rows"] if r["kind"] == "whole_run"}
    for row in stored.whole_run_rows:
        assert (row.windows, row.interval_method, row.interval_level) == (
            1, "block-bootstrap", 0.95,
        )  # fmt: skip
        assert row.window_seconds is None and row.systematic_half_seconds is None
        old = before[row.recipe]
        assert (row.projected_seconds, row.ci_low, row.ci_high) == (
            old["projected_seconds"], old["ci_low"], old["ci_high"],
        )  # fmt: skip
    copy = tmp_path / "whole-run.json"
    shutil.copy(source, copy)
    runner = CliRunner()
    first = runner.invoke(app, ["migrate", str(copy)])
    assert first.exit_code == 0, first.output
    assert json.loads(copy.read_text())["schema_version"] == 4
    migrated = copy.read_text()
    second = runner.invoke(app, ["migrate", str(copy)])
    assert second.exit_code == 0 and copy.read_text() == migrated


def test_a_projection_of_3_reads_as_made_without_a_history(tmp_path):
    """Schema 3 -> 4: every number kept; each row had no history (``history_projections``
    0, no drift half-width) and keeps its windowed interval."""
    from bench.migrate import load_projection

    source = ROOT / "reports" / "whole-run" / "headline-base-windows.json"
    payload = json.loads(source.read_text())
    assert payload["schema_version"] == 3
    stored = load_projection(source, payload)
    before = {r["recipe"]: r for r in payload["rows"] if r["kind"] == "whole_run"}
    for row in stored.whole_run_rows:
        old = before[row.recipe]
        assert row.history_projections == 0 and row.drift_half_seconds is None
        assert row.interval_method == old["interval_method"] == "windows-t+systematic"
        assert (row.projected_seconds, row.ci_low, row.ci_high) == (
            old["projected_seconds"], old["ci_low"], old["ci_high"],
        )  # fmt: skip
    copy = tmp_path / "headline.json"
    shutil.copy(source, copy)
    assert CliRunner().invoke(app, ["migrate", str(copy)]).exit_code == 0
    written = json.loads(copy.read_text())
    assert written["schema_version"] == 4
    assert [r["history_projections"] for r in written["rows"] if r["kind"] == "whole_run"] == [0, 0]
