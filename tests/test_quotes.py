"""Every figure the repository's prose quotes in a generated block (``<!-- quote:KEY -->``)
is what its quote function computes from the stored results (``bench.report.quoted``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report.quoted import QUOTED
from bench.report.quotes import BLOCK, UnknownQuote, refresh, stale

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    path.relative_to(ROOT)
    for path in ROOT.rglob("*.md")
    if ".git" not in path.parts and "goldens" not in path.parts and BLOCK.search(path.read_text())
)


def test_the_documents_that_quote_figures_are_found():
    assert Path("reports/pilot-difficulty/README.md") in DOCUMENTS


@pytest.mark.parametrize("document", DOCUMENTS, ids=str)
def test_every_quoted_figure_is_the_stored_results(document: Path):
    problems = stale((ROOT / document).read_text(), ROOT, QUOTED)
    assert not problems, "\n".join(f"{k}: quoted {q!r}, results give {c!r}" for k, q, c in problems)


def test_a_figure_typed_by_hand_is_caught_and_refreshed():
    key = "pilot/final/0.5/mavil"
    good = f"<!-- quote:{key} -->{QUOTED[key](ROOT)}<!-- /quote -->"
    typed = f"MAViL probes <!-- quote:{key} -->81% (n = 3)<!-- /quote -->."
    assert [k for k, _, _ in stale(typed, ROOT, QUOTED)] == [key]
    assert refresh(typed, ROOT, QUOTED) == f"MAViL probes {good}."
    assert stale(refresh(typed, ROOT, QUOTED), ROOT, QUOTED) == []


def test_an_unknown_key_is_an_error_naming_it():
    with pytest.raises(UnknownQuote, match="no quote function for 'pilot/nope'"):
        stale("<!-- quote:pilot/nope -->1<!-- /quote -->", ROOT, QUOTED)


def test_the_budget_quote_counts_what_the_grid_runs():
    from bench.ablate.grid import load_grid
    from bench.ablate.orchestrate import build_tasks
    from bench.report.quoted import TABLE2_TTA_COUNTS

    grid = load_grid(Path(__file__).resolve().parents[1] / "ablations" / "table2.yaml")
    tasks = build_tasks(grid, Path("unused"))
    rows = [task for task in tasks if task.kind == "row"]
    curves = [task for task in rows if task.curve is not None]
    interior = grid.base.budget_samples // grid.base.snapshot_every - 1
    finetunes = [task for task in tasks if task.finetune]
    controls = [task for task in tasks if task.kind == "control"]
    counted = (len(rows), len(curves), interior, len(finetunes), len(controls))
    assert counted == TABLE2_TTA_COUNTS
