"""The whole-run projection against a grid's own runs, by the pre-registered rule: the
rule's arithmetic against hand-computed numbers (the bounds included, one run, no
projection), the mapping of a row without a projection row of its own to its recipe, and
the report's two tables rendered from a results file with a whole-run.json beside it."""

from __future__ import annotations

import json
import statistics

import pytest

from bench.ablate.store import write_results
from bench.report.projection_rule import (
    Saving,
    check_saving,
    measured_saving,
    validate_row,
)
from bench.report.projection_validation import project_rows
from bench.report.render import render_report
from bench.schema import GridRecord, WholeRunRow
from diffmavil.environment import environment

# ------------------------------------------------------------------------ the rule's arithmetic


def test_errors_median_and_spread_by_hand():
    v = validate_row("mavil", {2: 110.0, 0: 104.0, 1: 96.0, 3: 101.0}, 100.0)
    assert v.seeds == (0, 1, 2, 3)
    assert v.errors == pytest.approx((0.04, -0.04, 0.10, 0.01))
    assert v.median_error == pytest.approx(0.025)  # (0.01 + 0.04) / 2
    assert (v.min_error, v.max_error) == pytest.approx((-0.04, 0.10))
    assert v.within_run_limit == 4  # +10% exactly is within ±10%
    assert v.passed is True and v.verdict == "validated"


def test_a_run_just_past_ten_percent_fails_the_row():
    v = validate_row("diffmavil", {0: 104.0, 1: 96.0, 2: 110.5, 3: 101.0}, 100.0)
    assert v.within_run_limit == 3 and v.median_ok is True and v.runs_ok is False
    assert v.verdict == "failed: 1 of 4 runs outside ±10%"
    low = validate_row("diffmavil", {0: 90.0, 1: 100.0, 2: 100.0}, 100.0)
    assert low.passed is True  # −10% exactly is within too
    assert validate_row("x", {0: 89.9, 1: 100.0, 2: 100.0}, 100.0).passed is False


def test_the_median_bound_is_five_percent_inclusive():
    assert validate_row("x", {0: 105.0, 1: 105.0, 2: 100.0}, 100.0).verdict == "validated"
    v = validate_row("x", {0: 106.0, 1: 106.0, 2: 100.0}, 100.0)
    assert v.median_error == pytest.approx(0.06) and v.runs_ok is True
    assert v.verdict == "failed: median error +6.0% outside ±5%"
    both = validate_row("x", {0: 112.0, 1: 108.0, 2: 107.0}, 100.0)
    assert both.verdict == "failed: median error +8.0% outside ±5%; 1 of 3 runs outside ±10%"


def test_a_row_with_one_run_can_fail_but_not_validate():
    one = validate_row("x", {4: 97.0}, 100.0)
    assert one.runs == 1 and one.median_error == pytest.approx(-0.03) and one.passed is None
    assert one.verdict == "1 run within the limits: too few to validate (at least 2)"
    slow = validate_row("x", {4: 107.0}, 100.0)
    assert slow.verdict == "failed: median error +7.0% outside ±5%"


def test_no_projection_and_no_run_are_not_judged():
    none = validate_row("x", {0: 100.0}, None)
    assert none.passed is None and none.verdict == "not projected" and none.runs == 0
    empty = validate_row("x", {}, 100.0)
    assert empty.passed is None and empty.verdict == "no comparable run"
    with pytest.raises(ValueError, match="positive"):
        validate_row("x", {0: 100.0}, 0.0)


def test_the_measured_saving_inside_the_projected_interval():
    measured = measured_saving(-0.138, -0.208, -0.068)  # a paired delta: 13.8% faster
    assert (measured.estimate, measured.low, measured.high) == (0.138, 0.068, 0.208)
    projected = Saving(0.151, 0.121, 0.176)
    assert check_saving("c", measured, projected).inside is True
    assert check_saving("c", Saving(0.121), projected).inside is True  # at the bound
    assert check_saving("c", Saving(0.176), projected).inside is True
    assert check_saving("c", Saving(0.1209), projected).inside is False
    assert check_saving("c", measured, Saving(0.151)).inside is None  # no interval
    assert check_saving("c", None, projected).inside is None
    assert measured_saving(None, None, None) is None
    assert measured.text() == "+13.8% [+6.8%, +20.8%]"


# ------------------------------------------------------------------ rows mapped to recipes
def _whole_run(recipe: str, seconds: float, **changes) -> WholeRunRow:
    fields = {
        "recipe": recipe,
        "baseline": recipe == "mavil",
        "variant": "mavil",
        "preset": "tiny",
        "device": "cpu",
        "dtype": "fp32",
        "compile": False,
        "threads": 2,
        "masking": "fixed 0.8/0.9",
        "batch": "fixed 16",
        "samples": 4096,
        "steps": 256,
        "points": 1,
        "measured_points": 1,
        "compute_seconds": seconds - 10.0,
        "data_seconds": 5.0,
        "overhead_seconds": 5.0,
        "projected_seconds": seconds,
        "ci_low": seconds - 8.0,
        "ci_high": seconds + 8.0,
        "loading_bound": False,
        "flops": 1000,
        "flop_saving": None,
        "time_saving": None,
        "time_saving_ci_low": None,
        "time_saving_ci_high": None,
        "time_per_flop_saving": None,
        "interpolation_error": 0.0,
        "interpolated_share": 0.0,
        "peak_memory_mb": None,
        "peak_memory_kind": None,
        "checkpoints": 1,
        "logged_rows": 8,
        "repeats": 5,
        "matmul_gflops_per_s": 10.0,
    }
    return WholeRunRow.model_validate({**fields, **changes})


DIFFMAVIL = {
    "variant": "cross-attn",
    "masking": "curriculum linear 0.8/0.9->0.9/0.95",
    "batch": "adaptive/tokens 16",
    "flops": 800,
    "flop_saving": 0.2,
    "time_saving": 0.15,
    "time_saving_ci_low": 0.12,
    "time_saving_ci_high": 0.18,
}
PROJECTED = {"mavil": 400.0, "diffmavil": 340.0}
DIFFERENCES = {
    "mavil": "(base)",
    "mavil-replica": "replica=1",
    "diffmavil": "variant=cross-attn, masking.kind=curriculum, batch.kind=adaptive",
    "mavil-longer": "budget_samples=8192",
}


def _projection() -> list[WholeRunRow]:
    return [_whole_run("mavil", 400.0), _whole_run("diffmavil", 340.0, **DIFFMAVIL)]


def _record(row: str, seed: int, seconds: float) -> dict:
    diff = row == "diffmavil"
    return {
        "row": row,
        "kind": "row",
        "seed": seed,
        "run_id": f"{row}-{seed}",
        "status": "completed",
        "baseline": row == "mavil",
        "preset": "tiny",
        "variant": "cross-attn" if diff else "mavil",
        "masking": "curriculum" if diff else "fixed",
        "batch": "adaptive" if diff else "fixed",
        "budget_samples": 8192 if row == "mavil-longer" else 4096,
        "differences": DIFFERENCES[row],
        "total_flops": 800 if diff else 1000,
        "wall_clock_seconds": seconds,
        "probe": {
            "init": "checkpoint",
            "mode": "probe",
            "modality": "audio",
            "data": "synthetic",
            "accuracy": 0.9 + 0.001 * seed,
        },
    }


def test_a_row_without_its_own_projection_row_is_mapped_by_its_config():
    records = [
        GridRecord.model_validate(_record(row, 0, 400.0))
        for row in ("mavil", "diffmavil", "mavil-replica", "mavil-longer")
    ]
    mapped = project_rows(records, _projection())
    assert mapped["mavil"].row.recipe == "mavil" and mapped["mavil"].note == ""
    assert mapped["mavil-replica"].row.recipe == "mavil"
    assert mapped["mavil-replica"].note == "as `mavil`"
    assert mapped["mavil-longer"].row is None  # 8,192 samples: no recipe projects that
    shorter = [*_projection(), _whole_run("mavil-longer", 500.0, samples=2048)]
    mapped = project_rows(records, shorter)
    assert mapped["mavil-longer"].row is None
    assert mapped["mavil-longer"].note == "projected 2,048 samples, its runs 8,192"
    assert project_rows(records, None) == {}


# ------------------------------------------------------------------------- the report's tables
RUN_SECONDS = {  # by seed: mavil within the rule, diffmavil one run +12% (fails)
    "mavil": (412.0, 392.0, 420.0, 404.0, 384.0, 396.0),
    "diffmavil": (350.0, 333.0, 380.8, 340.0, 343.4, 336.6),
    "mavil-replica": (414.0, 390.0, 421.0, 400.0, 386.0, 399.0),
}
STATISTICS = {"comparisons": [{"candidate": "diffmavil", "reference": "mavil"}]}


@pytest.fixture(scope="module")
def markdown(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("validation")
    records = [
        _record(row, s, seconds[s]) for row, seconds in RUN_SECONDS.items() for s in range(6)
    ]
    meta = {
        "grid": "validation",
        "seeds": list(range(6)),
        "baseline": "mavil",
        "statistics": STATISTICS,
        "environment": environment("cpu"),
    }
    write_results(out, records, meta, complete=True)
    rows = [r.model_dump(mode="json") for r in _projection()]
    payload = {"kind": "whole-run-projection", "environment": environment("cpu"), "rows": rows}
    (out / "whole-run.json").write_text(json.dumps(payload))
    return render_report(out, ("md",), out / "report")["md"].read_text()


def _rows(markdown: str, title: str) -> dict[str, list[str]]:
    block = markdown.split(f"**{title}**", 1)[1].split("\n**", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith("| ")][1:]
    lines = [line for line in lines if not line.startswith("| :")]  # the alignment row
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    return {c[0]: c for c in cells}


def _pct(value: float) -> str:
    """A fraction as the tables print it: "+2.5%", "−4.0%", "0.0%"."""
    text = f"{100 * value:+.1f}%".replace("-", "−")
    return "0.0%" if text in ("+0.0%", "−0.0%") else text


def test_the_rows_table_by_hand(markdown):
    table = _rows(markdown, "Projection vs the grid's runs")
    assert set(table) == {"mavil", "diffmavil"}  # the copy is never confirmatory
    for row, cells in table.items():
        errors = [s / PROJECTED[row] - 1 for s in RUN_SECONDS[row]]
        assert cells[2] == "6"
        assert cells[3] == _pct(statistics.median(errors))
        assert cells[4] == f"{_pct(min(errors))} / {_pct(max(errors))}"
    assert table["mavil"][1] == "400 s [392, 408]"
    assert table["mavil"][5] == "6 of 6" and table["mavil"][6] == "validated"
    assert table["diffmavil"][5] == "5 of 6"
    assert table["diffmavil"][6] == "**failed: 1 of 6 runs outside ±10%**"
    assert "its projection is **not a prediction**" in markdown
    assert "Failed here: `diffmavil`." in markdown


def test_the_savings_table_by_hand(markdown):
    (cells,) = _rows(markdown, "Projection vs the grid's runs: savings per comparison").values()
    ratios = [d / m for d, m in zip(RUN_SECONDS["diffmavil"], RUN_SECONDS["mavil"], strict=True)]
    saving = 1 - statistics.mean(ratios)
    assert cells[0] == "diffmavil vs mavil" and cells[1] == "6"
    assert cells[2].startswith(_pct(saving) + " [")
    assert cells[3] == "+15.0% [+12.0%, +18.0%]"
    assert cells[4] == ("yes" if 0.12 <= saving <= 0.18 else "**no**")
    assert cells[4] == "yes"  # 13.5% lies inside [12%, 18%]


def test_the_summary_shows_the_copy_projected_as_the_baseline(markdown):
    summary = _rows(markdown, "Cost and accuracy per row, with verdicts")
    copy = summary["mavil-replica (noise-floor copy of `mavil`)"]
    assert copy[4] == "0.0% (as `mavil`)"
    assert summary["diffmavil"][4] == "−15.0% [−18.0%, −12.0%]"
