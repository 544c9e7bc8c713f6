"""The Table 2 report regenerated from the committed ``reports/table2/results.json``: its
tables agree with each other wherever they show the same figure (one row, one answer), every
per-row accuracy interval lies inside [0, 100], the rows equal the regenerated golden, and
they differ from the committed ``reports/table2/report.md`` (rendered by the harness before
``bench.stats``) exactly where that report was wrong: unpaired deltas, accuracy intervals
past 100, the approximate detectable loss."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "reports" / "table2" / "report.md"
GOLDEN = ROOT / "tests" / "goldens" / "reports" / "table2" / "report.md"
SUMMARY = "Cost and accuracy per row, with verdicts"
RUNS = "Pre-training cost and downstream result per row"
COMPONENTS = "Pre-training FLOPs per component (share of the run)"
DOWNSTREAM = "Downstream accuracy (probe) per row, with controls"
VERDICTS = "Confirmatory comparisons: probe accuracy, paired by seed"
GAINS = "Pre-training's gain over random init, per row"
ABLATION_TABLES = (SUMMARY, RUNS, COMPONENTS, DOWNSTREAM, VERDICTS, GAINS)

# (table, row, column) -> (committed, regenerated): every cell of the committed report
# that the regenerated one changes, and why.
UNPAIRED = "the runs table subtracted the 6-seed baseline mean from 3-seed row means"
WRONG_WALL = "the runs table's wall-clock delta: unpaired means, where the summary paired"
PAST_100 = "the plain t interval of a mean accuracy, past 100; now logit t, inside [0, 100]"
LOGIT = "the accuracy interval on the logit scale (bends towards the bound)"
EXACT = "the detectable loss from the exact noncentral t, not (t_0.95 + t_0.8) sd / sqrt(n)"
CHANGED = {
    (RUNS, "mavil (baseline)", "95% CI"): ("[98.2, 99.2]", "[98.1, 99.1]", LOGIT),
    (RUNS, "diff-self", "Δ wall-clock"): ("−3.7%", "−7.3%", WRONG_WALL),
    (RUNS, "diff-self", "95% CI"): ("[86.9, 104.8]", "[70.8, 99.5]", PAST_100),
    (RUNS, "cross-attn", "Δ wall-clock"): ("−10.1%", "−13.3%", WRONG_WALL),
    (RUNS, "cross-attn", "95% CI"): ("[92.5, 100.5]", "[89.4, 98.9]", PAST_100),
    (RUNS, "cross-attn", "Δ accuracy (points)"): ("−2.2", "−2.1", UNPAIRED),
    (RUNS, "cross-attn+curriculum", "Δ wall-clock"): ("−13.9%", "−16.9%", WRONG_WALL),
    (RUNS, "cross-attn+curriculum", "95% CI"): ("[89.8, 100.7]", "[85.8, 98.5]", PAST_100),
    (RUNS, "cross-attn+curriculum", "Δ accuracy (points)"): ("−3.5", "−3.4", UNPAIRED),
    (RUNS, "diffmavil", "Δ wall-clock"): ("−14.0%", "−13.8%", WRONG_WALL),
    (RUNS, "diffmavil", "95% CI"): ("[94.4, 97.1]", "[94.1, 96.9]", LOGIT),
    (RUNS, "mavil@diffmavil-flops (compute-matched to diffmavil)", "Δ wall-clock"): (
        "−16.7%",
        "−16.4%",
        WRONG_WALL,
    ),
    (RUNS, "mavil@diffmavil-flops (compute-matched to diffmavil)", "95% CI"): (
        "[97.1, 98.8]",
        "[96.8, 98.7]",
        LOGIT,
    ),
    (DOWNSTREAM, "mavil", "95% CI"): ("[98.2, 99.2]", "[98.1, 99.1]", LOGIT),
    (DOWNSTREAM, "diff-self", "95% CI"): ("[86.9, 104.8]", "[70.8, 99.5]", PAST_100),
    (DOWNSTREAM, "cross-attn", "95% CI"): ("[92.5, 100.5]", "[89.4, 98.9]", PAST_100),
    (DOWNSTREAM, "cross-attn", "Δ vs baseline (points)"): ("−2.2", "−2.1", UNPAIRED),
    (DOWNSTREAM, "cross-attn+curriculum", "95% CI"): ("[89.8, 100.7]", "[85.8, 98.5]", PAST_100),
    (DOWNSTREAM, "cross-attn+curriculum", "Δ vs baseline (points)"): ("−3.5", "−3.4", UNPAIRED),
    (DOWNSTREAM, "diffmavil", "95% CI"): ("[94.4, 97.1]", "[94.1, 96.9]", LOGIT),
    (DOWNSTREAM, "mavil@diffmavil-flops", "95% CI"): ("[97.1, 98.8]", "[96.8, 98.7]", LOGIT),
    (DOWNSTREAM, "control: random-init", "95% CI"): ("[57.3, 65.0]", "[57.2, 64.9]", LOGIT),
    (VERDICTS, "diffmavil vs mavil", "detectable loss"): ("−3.8", "−3.7", EXACT),
    (VERDICTS, "diffmavil vs mavil@diffmavil-flops", "detectable loss"): ("−3.7", "−3.6", EXACT),
}
# columns whose label now says what it is: the level of its interval, sd for std
RELABELLED = {
    "accuracy % (mean ± std)": "accuracy % (mean ± sd)",
    "one-sided bounds": "one-sided bounds [95%]",
    "interval": "interval [95%]",
}

Table = dict[str, dict[str, str]]  # row name -> column label -> cell


def tables(markdown: str) -> dict[str, Table]:
    """The report's tables by title (the bold line above each): row -> column -> cell."""
    found: dict[str, Table] = {}
    title, header = "", None
    for line in markdown.splitlines():
        bold = re.fullmatch(r"\*\*(.+)\*\*", line)
        if bold:
            title, header = bold.group(1), None
        elif line.startswith("|") and not re.fullmatch(r"\|( :?-+:? \|)+", line):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if header is None:
                header = cells
            else:
                found.setdefault(title, {})[cells[0]] = dict(zip(header, cells, strict=True))
    return found


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, request) -> Path:
    out = tmp_path_factory.mktemp("table2")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.chdir(ROOT)
    request.addfinalizer(monkeypatch.undo)
    argv = ["report", "reports/table2", "reports/whole-run/headline-base.json", "--out", str(out)]
    result = CliRunner().invoke(app, [*argv, "--format", "md"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def regenerated(report_dir: Path) -> dict[str, Table]:
    return tables((report_dir / "report.md").read_text())


def _base(name: str) -> str:
    return name.split(" (")[0]


def test_one_row_one_answer_across_tables(regenerated):
    summary, runs = regenerated[SUMMARY], regenerated[RUNS]
    components, downstream = regenerated[COMPONENTS], regenerated[DOWNSTREAM]
    by_row = {_base(name): cells for name, cells in runs.items()}
    assert {_base(n) for n in summary} == set(by_row)
    for name, cells in summary.items():
        row = by_row[_base(name)]
        assert cells["Δ FLOPs"] == row["Δ FLOPs"] == components[_base(name)]["Δ total"]
        assert cells["accuracy % (mean ± sd)"] == row["accuracy % (mean ± sd)"]
        assert cells["accuracy % (mean ± sd)"] == downstream[_base(name)]["accuracy % (mean ± sd)"]
        assert row["95% CI"] == downstream[_base(name)]["95% CI"]
        if "baseline" in name:
            continue
        # the summary's paired deltas, mean [interval], are the runs table's deltas
        assert cells["Δ wall-clock, runs [95%]"].split(" [")[0] == row["Δ wall-clock"]
        accuracy = cells["Δ accuracy, points [95%]"].split(" [")[0]
        assert accuracy == row["Δ accuracy (points)"]
        assert accuracy == downstream[_base(name)]["Δ vs baseline (points)"]


def test_the_saving_plot_draws_the_summarys_paired_deltas(regenerated, report_dir: Path):
    """The wall-clock-vs-FLOP-saving figure: each row's paired savings (the summary's
    deltas, negated) with the wall-clock interval, not unpaired row means."""
    import csv

    summary = {_base(name): cells for name, cells in regenerated[SUMMARY].items()}
    with (report_dir / "ablation-table2-time-vs-flop-saving.csv").open() as handle:
        points = list(csv.DictReader(handle))
    assert [p["label"] for p in points] == [
        "diff-self (3 pairs)",
        "cross-attn (3 pairs)",
        "cross-attn+curriculum (3 pairs)",
        "diffmavil (6 pairs)",
    ]
    for point in points:
        cells = summary[point["label"].split(" (")[0]]
        wall = re.findall(r"[−+]?\d+\.\d", cells["Δ wall-clock, runs [95%]"])
        mean, low, high = (float(v.replace("−", "-")) for v in wall)
        assert f"{-100 * float(point['time_saving']):.1f}" == f"{mean:.1f}"
        assert f"{-100 * float(point['time_saving_high']):.1f}" == f"{low:.1f}"
        assert f"{-100 * float(point['time_saving_low']):.1f}" == f"{high:.1f}"
        flops = float(cells["Δ FLOPs"].rstrip("%").replace("−", "-"))
        assert f"{-100 * float(point['flop_saving']):.1f}" == f"{flops:.1f}"


def test_every_accuracy_interval_lies_inside_0_100(regenerated):
    for title in (RUNS, DOWNSTREAM):
        for name, cells in regenerated[title].items():
            low, high = (float(v) for v in cells["95% CI"].strip("[]").split(", "))
            mean = float(cells["accuracy % (mean ± sd)"].split(" ± ")[0])
            assert 0.0 <= low <= mean <= high <= 100.0, (title, name)


def test_the_rows_are_the_regenerated_golden(regenerated):
    golden = tables(GOLDEN.read_text())
    for title in ABLATION_TABLES:
        assert regenerated[title] == golden[title], title


def test_the_committed_report_differs_exactly_where_it_was_wrong(regenerated):
    committed = tables(COMMITTED.read_text())
    changed = {}
    for title in ABLATION_TABLES:
        assert set(committed[title]) == set(regenerated[title]), title
        for row, cells in committed[title].items():
            new = regenerated[title][row]
            assert [RELABELLED.get(c, c) for c in cells] == list(new), (title, row)
            for column, old in cells.items():
                cell = new[RELABELLED.get(column, column)]
                if cell != old:
                    changed[(title, row, column)] = (old, cell)
    assert changed == {key: (old, new) for key, (old, new, _) in CHANGED.items()}
