"""The wall-clock noise floor in an ablation report: the parser of a record's differences,
the copy of the baseline found by them (``replica=k``), its floor from the comparable runs
against a hand computation (Student's t), the sentence in every table with wall-clock
deltas, the copy labelled and never judged, and a grid without a copy told how to add one."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bench.ablate.store import read_results, write_results
from bench.report.ablation import _runs_table
from bench.report.groups import RUN_KINDS, group_rows
from bench.report.noise_floor import (
    NO_FLOOR,
    differences_tokens,
    measure_noise_floors,
    replica_number,
    replica_rows,
)
from bench.report.render import render_report
from bench.report.tables import to_markdown
from bench.report.time_to_accuracy import time_to_target_table
from bench.report.verdicts import summary_table
from bench.schema import EndpointResult
from diffmavil.environment import environment

SEEDS = range(6)
BASE_SECONDS = (400.0, 410.0, 395.0, 405.0, 420.0, 398.0)
COPY_DELTAS = (0.012, -0.020, 0.031, 0.004, -0.011, 0.018)  # copy / baseline - 1, by seed
DIFFERENCES = {
    "mavil": "(base)",
    "mavil-replica": "replica=1",
    "diffmavil": "variant=cross-attn, masking.kind=curriculum, batch.kind=adaptive",
}


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("(base)", set()),
        ("", set()),
        ("replica=1", {"replica=1"}),
        (
            "variant=cross-attn, masking.kind=curriculum",
            {"variant=cross-attn", "masking.kind=curriculum"},
        ),
        ("model.sizes=[1, 2], replica=3", {"model.sizes=[1, 2]", "replica=3"}),
    ],
)
def test_differences_are_parsed_into_tokens(text, tokens):
    assert differences_tokens(text) == tokens


@pytest.mark.parametrize(
    ("row", "baseline", "k"),
    [
        ("replica=1", "(base)", 1),
        ("variant=mavil, replica=2", "variant=mavil", 2),
        ("replica=2, variant=mavil", "variant=mavil", 2),  # order does not matter
        ("variant=cross-attn, replica=1", "(base)", None),  # a recipe's copy, not the baseline's
        ("replica=1", "variant=mavil", None),  # the baseline's token missing
        ("(base)", "(base)", None),
        ("budget_samples=25342", "(base)", None),
        ("replica=x", "(base)", None),
    ],
)
def test_a_copy_is_the_baseline_plus_one_replica_token(row, baseline, k):
    assert replica_number(row, baseline) == k


def _record(row: str, seed: int, seconds: float, comparable: bool = True) -> dict:
    accuracy = {"mavil": 0.90, "mavil-replica": 0.90, "diffmavil": 0.88}[row] + 0.002 * seed
    return {
        "row": row,
        "kind": "row",
        "seed": seed,
        "run_id": f"{row}-{seed}",
        "status": "completed",
        "baseline": row == "mavil",
        "preset": "tiny",
        "variant": "cross-attn" if row == "diffmavil" else "mavil",
        "masking": "curriculum" if row == "diffmavil" else "fixed",
        "batch": "adaptive" if row == "diffmavil" else "fixed",
        "budget_samples": 4096,
        "differences": DIFFERENCES[row],
        "total_flops": 800 if row == "diffmavil" else 1000,
        "wall_clock_seconds": seconds,
        "wall_clock_comparable": comparable,
        "probe": {
            "init": "checkpoint",
            "mode": "probe",
            "modality": "audio",
            "data": "synthetic",
            "accuracy": accuracy,
        },
    }


def _records(copy_seeds=SEEDS, shared: int | None = None) -> list[dict]:
    records = []
    for s in SEEDS:
        records.append(_record("mavil", s, BASE_SECONDS[s]))
        records.append(_record("diffmavil", s, 0.85 * BASE_SECONDS[s]))
        if s in copy_seeds:
            seconds = BASE_SECONDS[s] * (1 + COPY_DELTAS[s])
            records.append(_record("mavil-replica", s, seconds, comparable=s != shared))
    return records


STATISTICS = {
    "comparisons": [
        {"candidate": "diffmavil", "reference": "mavil"},
        {"candidate": "mavil-replica", "reference": "mavil"},  # a copy is never judged
    ]
}


def _results(tmp_path: Path, records: list[dict]):
    meta = {
        "grid": "floor",
        "seeds": list(SEEDS),
        "baseline": "mavil",
        "statistics": STATISTICS,
        "environment": environment("cpu"),
    }
    write_results(tmp_path, records, meta, complete=True)
    return read_results(tmp_path)


def _floor_by_hand(seeds) -> float:
    deltas = np.array([COPY_DELTAS[s] for s in seeds])
    n = len(deltas)
    half = stats.t.ppf(0.975, n - 1) * deltas.std(ddof=1) / math.sqrt(n)
    return max(abs(deltas.mean() - half), abs(deltas.mean() + half))


def test_the_floor_is_measured_from_the_comparable_pairs(tmp_path):
    results = _results(tmp_path, _records(shared=3))  # seed 3's copy shared the CPU
    assert replica_rows(results.records) == {"mavil-replica": 1}
    (floor,) = measure_noise_floors(results.records)
    assert floor.pairs == 5 and floor.row == "mavil-replica" and floor.baseline == "mavil"
    expected = _floor_by_hand([0, 1, 2, 4, 5])
    assert floor.floor is not None and floor.floor.floor == pytest.approx(expected, rel=1e-9)
    sentence = floor.sentence()
    assert f"differences below {100 * expected:.1f}% are noise on this machine" in sentence
    assert "measured from 5 pairs, fewer than the 6 a noise floor needs" in sentence


def test_one_pair_is_no_floor_and_says_so(tmp_path):
    (floor,) = measure_noise_floors(_results(tmp_path, _records(copy_seeds=[0])).records)
    assert floor.pairs == 1 and floor.floor is None
    assert "not measured yet: 1 pair(s) of comparable runs, fewer than the 6" in floor.sentence()


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"**{title}**", 1)[1].split("\n**", 1)[0]


def _rows(block: str) -> dict[str, list[str]]:
    lines = [line for line in block.splitlines() if line.startswith("| ")][1:]
    lines = [line for line in lines if not line.startswith("| :")]  # the alignment row
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    return {c[0]: c for c in cells}


@pytest.fixture(scope="module")
def markdown(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("floor")
    _results(out, _records())
    return render_report(out, ("md",), out / "report")["md"].read_text()


def test_the_report_prints_the_floor_beside_every_wall_clock_delta(markdown):
    expected = f"differences below {100 * _floor_by_hand(SEEDS):.1f}% are noise on this machine"
    sentence = f"Noise floor (`mavil-replica` against `mavil`): {expected}"
    summary = _section(markdown, "Cost and accuracy per row, with verdicts")
    runs = _section(markdown, "Pre-training cost and downstream result per row")
    assert sentence in summary and sentence in runs
    assert "6 pairs" in summary and "fewer than the 6" not in summary
    assert NO_FLOOR not in markdown


def test_the_copy_is_labelled_and_never_judged(markdown):
    copy = "mavil-replica (noise-floor copy of `mavil`)"
    summary = _rows(_section(markdown, "Cost and accuracy per row, with verdicts"))
    assert summary[copy][-1] == "no verdict: a noise-floor copy"
    assert summary[copy][6] == "—" and summary[copy][7] == "—"  # no Δ accuracy, no gain
    mean_delta = 100 * float(np.mean(COPY_DELTAS))
    assert summary[copy][3].startswith(f"+{mean_delta:.1f}% [")  # its wall-clock is shown
    assert summary["diffmavil"][-1].startswith("vs mavil: ")
    runs = _rows(_section(markdown, "Pre-training cost and downstream result per row"))
    assert copy in runs
    verdicts = _section(markdown, "Confirmatory comparisons: probe accuracy, paired by seed")
    assert "diffmavil vs mavil" in verdicts and "mavil-replica vs mavil" not in verdicts
    assert "Left out of the verdicts: mavil-replica vs mavil" in markdown


def test_the_plots_leave_the_copy_out(tmp_path, monkeypatch):
    import bench.report.ablation as ablation_module

    plotted: list[list[str]] = []
    real = ablation_module.ablation_plots

    def recording(section, ablation, rows, *rest):
        plotted.append([g.name for g in rows])
        return real(section, ablation, rows, *rest)

    monkeypatch.setattr(ablation_module, "ablation_plots", recording)
    _results(tmp_path, _records())
    text = render_report(tmp_path, ("md",), tmp_path / "report")["md"].read_text()
    assert plotted == [["mavil", "diffmavil"]]  # the copy is in the tables, not the plots
    assert "The plots leave out the noise-floor copy (`mavil-replica`)" in text
    assert "mavil-replica (noise-floor copy of `mavil`)" in text


def test_a_grid_without_a_copy_says_no_floor_was_measured(tmp_path):
    results = _results(tmp_path, [r for r in _records() if r["row"] != "mavil-replica"])
    groups = [g for g in group_rows(results.records) if g.kind in RUN_KINDS]
    base = next(g for g in groups if g.baseline)
    floors = measure_noise_floors(results.records)
    assert floors == []
    for table in (
        summary_table(groups, base, results, None, floors),
        _runs_table(groups, base, "accuracy", False, floors),
    ):
        text = to_markdown(table)
        assert "No noise floor was measured" in text
        assert "a row of the baseline with `replica: 1`" in text


def test_the_wall_clock_ratios_carry_the_floor(tmp_path):
    ratio = EndpointResult(
        comparison="diffmavil vs mavil",
        candidate="diffmavil",
        reference="mavil",
        endpoint="wall_clock_to_target",
        target=70.0,
        role="descriptive",
        unit="ratio",
        n=6,
        seeds=list(SEEDS),
        estimate=0.85,
        low=0.8,
        high=0.9,
        level=0.95,
        sides="two-sided",
    )
    floors = measure_noise_floors(_results(tmp_path, _records()).records)
    text = to_markdown(time_to_target_table([ratio], 0.95, floors))
    assert re.search(r"differences below \d+\.\d% are noise on this machine", text)
    assert "No noise floor was measured" in to_markdown(time_to_target_table([ratio], 0.95, []))
    flops = ratio.model_copy(update={"endpoint": "flops_to_target"})
    assert "noise" not in to_markdown(time_to_target_table([flops], 0.95, floors))
