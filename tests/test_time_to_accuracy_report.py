"""The time-to-accuracy endpoints and report tables from a hand-made results file (6 seeds,
curves built so that every case occurs: crossings interpolated between snapshots, 6/6 and
5/6 pairs reaching a target, 3/6 too few, a run censored at its budget), written with the
grid's own writer: the judged endpoints against values worked out here, the tables' cells,
the primary verdict in the summary, the probe verdicts labelled descriptive, and every table
within a 1,400 px browser window."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bench.ablate.store import read_results, write_results
from bench.report.render import render_report
from diffmavil.environment import environment

SEEDS = range(6)
SAMPLES = (100, 200, 300, 400)
FLOPS_PER_SAMPLE = {"mavil": 10, "diffmavil": 8}
ACCURACY = {"mavil": (0.40, 0.55, 0.65, 0.72), "diffmavil": (0.45, 0.60, 0.70, 0.74)}
SLOW = (0.45, 0.55, 0.58, 0.59)  # diffmavil at seed 5: never reaches 60
STATISTICS = {
    "comparisons": [{"candidate": "diffmavil", "reference": "mavil"}],
    "targets": [50.0, 70.0, 73.0],
    "primary": {"endpoint": "flops_to_target", "target": 70.0},
}


def _accuracy(row: str, seed: int) -> list[float]:
    base = SLOW if (row, seed) == ("diffmavil", 5) else ACCURACY[row]
    return [a + 0.005 * seed for a in base]


def _record(row: str, seed: int) -> dict:
    flops = [s * FLOPS_PER_SAMPLE[row] for s in SAMPLES]
    curve = [
        {
            "samples": s,
            "flops": f,
            "wall_clock_seconds": 0.01 * s * (0.9 if row == "diffmavil" else 1.0),
            "accuracy": a,
            "probe_seeds": 1 if s < SAMPLES[-1] else 3,
            "step": i,
            "snapshot": f"snapshots/samples-{s:09d}.pt",
            "final": s == SAMPLES[-1],
        }
        for i, (s, f, a) in enumerate(zip(SAMPLES, flops, _accuracy(row, seed), strict=True))
    ]
    return {
        "row": row,
        "kind": "row",
        "seed": seed,
        "run_id": f"{row}-{seed}",
        "status": "completed",
        "baseline": row == "mavil",
        "preset": "tiny",
        "variant": "mavil" if row == "mavil" else "cross-attn",
        "masking": "fixed",
        "batch": "fixed" if row == "mavil" else "adaptive",
        "budget_samples": SAMPLES[-1],
        "total_flops": flops[-1],
        "wall_clock_seconds": curve[-1]["wall_clock_seconds"],
        "probe": {
            "init": "checkpoint",
            "mode": "probe",
            "modality": "audio",
            "data": "synthetic",
            "accuracy": curve[-1]["accuracy"],
        },
        "curve": curve,
        "finetune": {
            "init": "checkpoint",
            "mode": "finetune",
            "modality": "audio",
            "data": "synthetic",
            "accuracy": 0.80 + 0.01 * seed + (0.01 if row == "diffmavil" else 0.0),
        },
    }


def _control(seed: int) -> dict:
    return {
        "row": "control: random-init",
        "kind": "control",
        "seed": seed,
        "run_id": f"control-{seed}",
        "status": "completed",
        "preset": "tiny",
        "variant": "mavil",
        "wall_clock_comparable": None,
        "probe": {
            "init": "random",
            "mode": "probe",
            "modality": "audio",
            "data": "synthetic",
            "accuracy": 0.25 + 0.01 * seed,
        },
        "finetune": {
            "init": "random",
            "mode": "finetune",
            "modality": "audio",
            "data": "synthetic",
            "accuracy": 0.30,
        },
    }


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tta-report")
    records = [_record(row, s) for s in SEEDS for row in ("mavil", "diffmavil")]
    records += [_control(s) for s in SEEDS]
    meta = {
        "grid": "hand",
        "seeds": list(SEEDS),
        "baseline": "mavil",
        "statistics": STATISTICS,
        "environment": environment("cpu"),
    }
    write_results(out, records, meta, complete=True)
    return out


def _crossing(accuracy: list[float], xs: list[float], target: float) -> tuple[float, bool]:
    points = [100 * a for a in accuracy]
    for i, value in enumerate(points):
        if value >= target:
            if i == 0:
                return xs[0], True
            return xs[i - 1] + (target - points[i - 1]) / (value - points[i - 1]) * (
                xs[i] - xs[i - 1]
            ), True
    return xs[-1], False


def _flops(row: str) -> list[float]:
    return [float(s * FLOPS_PER_SAMPLE[row]) for s in SAMPLES]


def test_ratios_by_hand_with_five_of_six_and_the_counts_below(results_dir):
    endpoints = {(e.endpoint, e.target): e for e in read_results(results_dir).endpoints}
    for target, reached in ((50.0, [0, 1, 2, 3, 4, 5]), (70.0, [0, 1, 2, 3, 4])):
        endpoint = endpoints[("flops_to_target", target)]
        times = {
            row: [_crossing(_accuracy(row, s), _flops(row), target) for s in SEEDS]
            for row in ("diffmavil", "mavil")
        }
        assert endpoint.reached_both == reached and endpoint.n == 6
        assert endpoint.candidate_values == pytest.approx([t for t, _ in times["diffmavil"]])
        logs = [math.log(times["diffmavil"][s][0] / times["mavil"][s][0]) for s in reached]
        assert endpoint.estimate == pytest.approx(math.exp(np.mean(logs)))
        one_sided = endpoint.role == "primary"
        t = stats.t.ppf(0.95 if one_sided else 0.975, len(logs) - 1)
        half = t * np.std(logs, ddof=1) / math.sqrt(len(logs))
        assert endpoint.high == pytest.approx(math.exp(np.mean(logs) + half))
    # mavil at 50: 40 at 100 samples, 55 at 200 -> 100 + 100 * 10 / 15 samples, interpolated
    samples = endpoints[("samples_to_target", 50.0)]
    assert samples.reference_values[0] == pytest.approx(100 + 100 * 10 / 15)
    censored = endpoints[("flops_to_target", 70.0)]
    assert censored.candidate_censored == [5]  # kept, at its budget
    assert censored.candidate_values[5] == _flops("diffmavil")[-1]
    too_few = endpoints[("flops_to_target", 73.0)]
    assert too_few.reached_both == [2, 3, 4] and too_few.estimate is None
    primary = endpoints[("flops_to_target", 70.0)]
    assert primary.verdict == ("faster" if primary.high < 1 else "undecided")
    assert primary.verdict == "faster"  # 0.8x the FLOPs per sample, and sooner


def _md_tables(markdown: str) -> dict[str, list[list[str]]]:
    tables: dict[str, list[list[str]]] = {}
    title = ""
    for line in markdown.splitlines():
        bold = re.fullmatch(r"\*\*(.+)\*\*", line)
        if bold:
            title = bold.group(1)
        elif line.startswith("| ") and not line.startswith("| :") and not line.startswith("| -"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            tables.setdefault(title, []).append(cells)
    return tables


@pytest.fixture(scope="module")
def markdown(results_dir, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("rendered")
    return render_report(results_dir, ("md",), out)["md"].read_text()


def test_the_time_to_accuracy_tables(markdown):
    section = markdown.split("## Time to accuracy: grid `hand`", 1)[1].split("\n## ", 1)[0]
    tables = _md_tables(section)
    (header, primary) = tables["Primary endpoint: verdicts"]
    assert primary[:3] == ["diffmavil vs mavil", "FLOPs to 70%", "5 of 6"]
    assert primary[-1] == "**faster**" and header[4] == "one-sided bounds [95%]"
    timed = {row[1]: row for row in tables["Time to accuracy, per comparison and target"][1:]}
    assert timed["50%"][2] == "6/6, 6/6, 6/6"
    assert timed["70%"][2] == "5/6, 6/6, 5/6" and timed["70%"][4].endswith("‡")
    assert timed["73%"][3] == "no ratio: 3/6 reached both (needs 5)"
    assert re.fullmatch(r"\d\.\d\d× \[\d\.\d\d×, \d\.\d\d×\]", timed["50%"][3])
    (_, final) = tables["Area under the curve and final accuracy, per comparison"]
    assert final[3] == "+1.0 [+1.0, +1.0]"  # fine-tune: +1 point on every seed
    finetune = {row[0]: row for row in tables["Fine-tune accuracy per row, with random init"][1:]}
    assert finetune["mavil"][3] == "82.5 ± 1.9" and finetune["mavil"][5] == "—"
    assert finetune["control: random-init"][1] == "random"


def test_the_summary_shows_the_primary_verdict_and_the_probe_verdicts_are_descriptive(markdown):
    tables = _md_tables(markdown)
    summary = {row[0]: row for row in tables["Cost and accuracy per row, with verdicts"][1:]}
    assert summary["diffmavil"][-1] == "vs mavil: faster (FLOPs to 70%)"
    probe = tables["Comparisons: probe accuracy, paired by seed (descriptive)"]
    assert probe[0][-1] == "verdict (descriptive)"
    assert "The grid's primary endpoint is `flops_to_target`" in markdown


def test_the_curves_figure_and_its_table(results_dir, tmp_path):
    import csv

    render_report(results_dir, ("md",), tmp_path)
    with open(tmp_path / "tta-hand-curves.csv") as handle:
        lines = [line for line in csv.DictReader(handle) if line["row"] == "diffmavil"]
    assert [float(line["samples"]) for line in lines] == [0, *SAMPLES]
    assert float(lines[0]["accuracy_mean"]) == pytest.approx(100 * (0.25 + 0.01 * 2.5))
    last = [100 * _accuracy("diffmavil", s)[-1] for s in SEEDS]
    assert float(lines[-1]["accuracy_min"]) == pytest.approx(min(last))
    assert float(lines[-1]["accuracy_max"]) == pytest.approx(max(last))


def test_the_time_to_accuracy_tables_fit_a_1400_pixel_window(results_dir, tmp_path):
    from tests import test_report_browser as browser

    if browser.BROWSER is None:
        pytest.skip("no Chromium found")
    html = render_report(results_dir, ("html",), tmp_path / "report")["html"]
    page = tmp_path / "width.html"
    page.write_text(html.read_text().replace("</body>", browser.WIDTH_PROBE + "</body>"))
    dom = browser._run(
        ["--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        tmp_path,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    attributes = dict(re.findall(r'data-probe-([a-z]+)="([^"]*)"', body.group(0)))
    assert int(attributes["tables"]) >= 8
    assert attributes["wide"] == ""


def _judged(statistics: dict, change=None):
    from bench.requests import StatisticsSpec
    from bench.schema import GridRecord, judge

    records = [_record(row, s) for s in SEEDS for row in ("mavil", "diffmavil")]
    records += [_control(s) for s in SEEDS]
    typed = [GridRecord.model_validate(change(r) if change else r) for r in records]
    return judge(typed, StatisticsSpec.model_validate(statistics))["endpoints"]


def test_an_accuracy_primary_gets_the_non_inferiority_verdict():
    statistics = {**STATISTICS, "primary": {"endpoint": "final_finetune"}}
    endpoints = {(e.endpoint, e.target): e for e in _judged(statistics)}
    primary = endpoints[("final_finetune", None)]
    assert primary.role == "primary" and primary.sides == "one-sided bounds"
    assert primary.estimate == pytest.approx(1.0) and primary.margin_points == 2.0
    assert primary.verdict == "no loss within the margin"
    assert endpoints[("flops_to_target", 70.0)].role == "descriptive"
    assert endpoints[("flops_to_target", 70.0)].verdict is None


def test_wall_clock_pairs_only_runs_whose_wall_clock_is_comparable():
    def shared(record: dict) -> dict:
        if (record["row"], record["seed"]) == ("mavil", 3):
            return {**record, "wall_clock_comparable": False}
        return record

    endpoints = {(e.endpoint, e.target): e for e in _judged(STATISTICS, shared)}
    assert endpoints[("wall_clock_to_target", 50.0)].seeds == [0, 1, 2, 4, 5]
    assert endpoints[("flops_to_target", 50.0)].seeds == list(SEEDS)


def test_old_results_have_no_endpoints_and_a_grid_without_comparisons_neither():
    assert _judged({"targets": [50.0]}) == []
    plain = {k: v for k, v in STATISTICS.items() if k not in ("targets", "primary")}
    bare = _judged(plain, lambda r: {k: v for k, v in r.items() if k not in ("curve", "finetune")})
    assert bare == []
