"""The committed time-to-accuracy Table 2 (``reports/table2-tta``) regenerates from its
committed ``results.json``, ``whole-run.json`` and runs' ``metrics.jsonl``: every table and note of report.md, and
every table's CSV, equal the committed ones. Left out: the line naming when and from where
the report was generated, and the environment section's column for the machine that
regenerates it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "reports" / "table2-tta"
ENVIRONMENT = '<a id="environment"></a>'


def _comparable(markdown: str) -> str:
    """The report without its generation line and its environment section."""
    body = markdown.split(ENVIRONMENT)[0]
    return "\n".join(line for line in body.splitlines() if not line.startswith("Generated "))


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    """The report rendered again from the committed directory (results.json, whole-run.json
    and each run's metrics.jsonl under runs/)."""
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:  # the report names its input as given
        patch.chdir(ROOT)
        result = CliRunner().invoke(app, ["report", "reports/table2-tta", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_committed_report_regenerates_from_its_results(regenerated):
    committed = _comparable((COMMITTED / "report.md").read_text())
    assert _comparable((regenerated / "report.md").read_text()) == committed


def test_every_table_csv_regenerates(regenerated):
    names = sorted(p.name for p in COMMITTED.glob("table-*.csv") if "environment" not in p.name)
    assert names, "the committed report has its tables as CSV"
    for name in names:
        assert (regenerated / name).read_text() == (COMMITTED / name).read_text(), name
