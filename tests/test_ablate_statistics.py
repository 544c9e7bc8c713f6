"""Grid statistics: confirmatory comparisons, per-row seed counts, the shuffled row order,
one random-init control for every variant, and the verdicts stored in aggregate.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from bench.ablate.grid import GridError, load_grid
from bench.ablate.orchestrate import build_tasks, execution_order
from bench.ablate.store import write_results
from bench.requests import StatisticsSpec
from bench.schema import GridRecord
from bench.schema.judging import confirmatory_verdicts, control_gains, paired_deltas
from bench.stats import LOSS, NO_LOSS, UNDECIDED

GRID = {
    "name": "stats",
    "base": {
        "preset": "tiny",
        "variant": "mavil",
        "budget_samples": 16,
        "data": "synthetic:classes=4,size=16,eval_size=8",
        "batch": {"batch_size": 8},
    },
    "seeds": [0, 1, 2, 3, 4],
    "run": {"probe": {"epochs": 2, "probe_seeds": 3}, "controls": ["random", "fbank"]},
    "rows": {
        "mavil": {"baseline": True},
        "cross-attn": {"variant": "cross-attn", "seeds": 2},
        "diffmavil": {"variant": "cross-attn", "masking.kind": "curriculum"},
        "mavil-matched": {"variant": "mavil", "budget.match_flops_of": "diffmavil"},
    },
    "statistics": {
        "margin_points": 2.0,
        "comparisons": [
            {"candidate": "diffmavil", "reference": "mavil"},
            {"candidate": "diffmavil", "reference": "mavil-matched"},
        ],
    },
}


def _grid(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_rows_run_at_their_seed_count_and_random_controls_serve_every_variant(
    tmp_path: Path,
) -> None:
    grid = load_grid(_grid(tmp_path, GRID))
    tasks = build_tasks(grid, tmp_path / "out")
    rows = [(t.row, t.seed) for t in tasks if t.kind == "row"]
    assert sorted(s for r, s in rows if r == "cross-attn") == [0, 1]
    assert sorted(s for r, s in rows if r == "mavil") == [0, 1, 2, 3, 4]
    controls = [t for t in tasks if t.kind == "control"]
    # one random-init and one fbank control per seed, although rows have two variants
    assert sorted((t.row, t.seed) for t in controls) == sorted(
        (name, seed) for seed in range(5) for name in ("control: random-init", "control: fbank")
    )
    assert {t.pretrain["variant"] for t in controls if t.init == "random"} == {"mavil"}
    # the command line's seeds narrow a row's seeds the same way
    narrowed = load_grid(_grid(tmp_path, GRID), seeds=[4])
    assert narrowed.seeds_of(next(r for r in narrowed.rows if r.name == "cross-attn")) == [4]


def test_each_seed_runs_its_rows_in_its_own_order(tmp_path: Path) -> None:
    grid = load_grid(_grid(tmp_path, GRID))
    tasks = build_tasks(grid, tmp_path / "out")
    order = execution_order(tasks, grid)
    assert sorted(map(id, order)) == sorted(map(id, tasks))  # a permutation
    seeds = [t.seed for t in order]
    assert seeds == sorted(seeds)  # seed by seed
    per_seed = [[t.row for t in order if t.seed == s and t.kind == "row"] for s in (0, 1, 2, 3, 4)]
    assert len({tuple(rows) for rows in per_seed[2:]}) > 1  # the 4-row seeds differ in order
    for s in range(5):  # controls after their seed's rows
        kinds = [t.kind for t in order if t.seed == s]
        assert kinds == sorted(kinds, key=lambda k: k == "control")
    assert execution_order(tasks, grid) == order  # deterministic
    listed = dict(GRID, statistics={**GRID["statistics"], "row_order": "listed"})
    grid = load_grid(_grid(tmp_path, listed))
    tasks = build_tasks(grid, tmp_path / "out")
    assert execution_order(tasks, grid) == tasks


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            {"statistics": {"comparisons": [{"candidate": "difmavil", "reference": "mavil"}]}},
            ["statistics.comparisons.0.candidate", "'difmavil'", "did you mean 'diffmavil'"],
        ),
        (
            {"statistics": {"comparisons": [{"candidate": "mavil", "reference": "mavil"}]}},
            ["compared with itself"],
        ),
        ({"statistics": {"margin_points": -1}}, ["statistics.margin_points"]),
        ({"statistics": {"row_order": "random"}}, ["statistics.row_order"]),
        ({"statistics": {"marign_points": 1}}, ["statistics.marign_points"]),
        ({"rows": {"mavil": {"baseline": True, "seeds": 0}}}, ["row 'mavil'", "key 'seeds'"]),
        ({"rows": {"mavil": {"baseline": True, "seeds": "3"}}}, ["key 'seeds'"]),
    ],
)
def test_bad_statistics_are_one_line_naming_the_key(
    tmp_path: Path, change: dict, expected: list[str]
) -> None:
    with pytest.raises(GridError) as raised:
        load_grid(_grid(tmp_path, {**GRID, **change}))
    message = str(raised.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, message


def _typed(records: list[dict]) -> list[GridRecord]:
    return [GridRecord.model_validate(record) for record in records]


def _record(row: str, seed: int, accuracy: float | None, kind: str = "row", **extra) -> dict:
    init = extra.pop("init", "checkpoint")
    probe = {"init": init, "mode": "probe", "modality": "audio+video", "data": "synthetic"}
    return {
        "row": row,
        "seed": seed,
        "kind": kind,
        "run_id": f"{row}@{seed}",
        "preset": "tiny",
        "status": "completed" if accuracy is not None else "failed",
        "baseline": row == "mavil",
        "wall_clock_comparable": True,
        "probe": None if accuracy is None else {**probe, "accuracy": accuracy},
        **extra,
    }


def test_verdicts_match_a_hand_computed_student_t_interval() -> None:
    # differences diffmavil - mavil: +1, +2, +3 points -> mean 2, sd 1, t(0.95, 2) = 2.919986
    records = [
        *[_record("mavil", s, a) for s, a in enumerate([0.60, 0.70, 0.65])],
        *[_record("diffmavil", s, a) for s, a in enumerate([0.61, 0.72, 0.68])],
        _record("diffmavil", 3, 0.99),  # unpaired: no mavil run at seed 3
        _record("mavil-matched", 0, None),  # failed: no pair
    ]
    spec = StatisticsSpec.model_validate(GRID["statistics"])
    first, second = confirmatory_verdicts(_typed(records), spec)
    half = 2.919986 * 1.0 / math.sqrt(3)
    assert first.n == 3 and first.seeds == [0, 1, 2]
    assert first.mean_points == pytest.approx(2.0)
    assert first.lower_points == pytest.approx(2.0 - half, abs=1e-5)
    assert first.upper_points == pytest.approx(2.0 + half, abs=1e-5)
    assert first.differences_points == pytest.approx([1.0, 2.0, 3.0])
    assert first.verdict == NO_LOSS  # lower bound +0.31 > -2
    assert second.verdict == "not enough pairs"
    # a large loss is "loss"; a wide spread around -2 is "undecided"
    loss = [_record("diffmavil", s, a - 0.10) for s, a in enumerate([0.60, 0.70, 0.65])]
    assert confirmatory_verdicts(_typed(loss + records[:3]), spec)[0].verdict == LOSS
    wide = [_record("diffmavil", s, a) for s, a in enumerate([0.55, 0.74, 0.61])]
    assert confirmatory_verdicts(_typed(wide + records[:3]), spec)[0].verdict == UNDECIDED


def test_control_gains_pass_only_with_a_large_gain_above_zero() -> None:
    control = [
        _record("control: random-init", s, 0.40, kind="control", init="random") for s in range(3)
    ]
    strong = [_record("mavil", s, a) for s, a in enumerate([0.55, 0.58, 0.56])]
    weak = [_record("diff", s, a) for s, a in enumerate([0.45, 0.43, 0.46])]
    gains = {g.row: g for g in control_gains(_typed(control + strong + weak), StatisticsSpec())}
    assert gains["mavil"].control == "control: random-init"
    assert gains["mavil"].gain_points == pytest.approx(16.333333)
    assert gains["mavil"].passes is True
    assert gains["diff"].gain_points == pytest.approx(4.666667)
    assert gains["diff"].lower_points > 0
    assert gains["diff"].passes is False  # above zero, below the 10-point bar
    assert "control: random-init" not in gains  # controls are not judged against themselves


def test_aggregate_json_stores_the_verdicts(tmp_path: Path) -> None:
    records = [
        *[_record("mavil", s, a) for s, a in enumerate([0.60, 0.70, 0.65])],
        *[_record("diffmavil", s, a) for s, a in enumerate([0.61, 0.72, 0.68])],
    ]
    meta = {"grid": "stats", "statistics": GRID["statistics"]}
    write_results(tmp_path, records, meta, complete=True)
    stored = json.loads((tmp_path / "aggregate.json").read_text())
    assert stored["statistics"]["margin_points"] == 2.0
    assert [c["name"] for c in stored["comparisons"]] == [
        "diffmavil vs mavil",
        "diffmavil vs mavil-matched",
    ]
    assert stored["comparisons"][0]["verdict"] == NO_LOSS


def test_report_renders_the_stored_verdicts_and_the_differences_plot(tmp_path: Path) -> None:
    from bench.report.render import render_report

    records = [
        *[_record("mavil", s, a) for s, a in enumerate([0.60, 0.70, 0.65])],
        *[_record("diffmavil", s, a) for s, a in enumerate([0.61, 0.72, 0.68])],
        *[
            _record("control: random-init", s, 0.40, kind="control", init="random")
            for s in range(3)
        ],
    ]
    write_results(
        tmp_path / "grid", records, {"grid": "stats", "statistics": GRID["statistics"]}, True
    )
    stored = json.loads((tmp_path / "grid" / "results.json").read_text())
    # the renderer shows what the results store: tamper with the stored verdict to prove it
    assert stored["comparisons"][0]["verdict"] == NO_LOSS
    stored["comparisons"][0]["verdict"] = LOSS
    (tmp_path / "grid" / "results.json").write_text(json.dumps(stored))
    written = render_report(tmp_path / "grid" / "results.json", ("md", "latex"), tmp_path / "out")
    text = written["md"].read_text()
    assert "Confirmatory comparisons: probe accuracy, paired by seed" in text
    assert "| diffmavil vs mavil | 3 | +2.0 | 1.0 | [+0.3, +3.7] | −2 | −4.3 | loss |" in text
    assert "not enough pairs" in text
    assert "Pre-training's gain over random init, per row" in text
    assert "| mavil | control: random-init | 3 | +25.0 |" in text
    plot_csv = next((tmp_path / "out").glob("*verdicts.csv")).read_text().splitlines()
    assert plot_csv[0] == "comparison,seed,difference_points" and len(plot_csv) == 4
    assert r"$-$4.3 & loss \\" in written["latex"].read_text()


def test_paired_deltas_pair_each_seed_with_the_baselines_run() -> None:
    walls = {"mavil": [100.0, 200.0, 150.0], "diffmavil": [80.0, 170.0, 120.0]}
    records = [
        _record(row, s, acc, wall_clock_seconds=walls[row][s])
        for row, accs in (("mavil", [0.60, 0.70, 0.65]), ("diffmavil", [0.61, 0.72, 0.68]))
        for s, acc in enumerate(accs)
    ]
    records.append(_record("diffmavil", 3, 0.5, wall_clock_seconds=1.0))  # no baseline pair
    (delta,) = paired_deltas(_typed(records))
    ratios = [80 / 100 - 1, 170 / 200 - 1, 120 / 150 - 1]  # -0.20, -0.15, -0.20
    mean = sum(ratios) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in ratios) / 2)
    half = 4.302653 * sd / math.sqrt(3)  # t(0.975, 2)
    assert delta.row == "diffmavil" and delta.wall_clock_pairs == 3
    assert delta.wall_clock_delta_mean == pytest.approx(mean)
    assert delta.wall_clock_delta_sd == pytest.approx(sd)
    assert delta.wall_clock_delta_low == pytest.approx(mean - half, abs=1e-6)
    assert delta.accuracy_delta_points_mean == pytest.approx(2.0)
    assert delta.wall_clock_split_pairs == 0  # no record says which process ran it

    # pairs run by different processes (--rows waves, a resumed grid) are counted as split
    def ran_by(host: str, pid: int) -> dict:
        return {"host": host, "pid": pid, "token": "t", "started_at": 0.0, "finished_at": 1.0}

    for record in records:
        record["execution"] = ran_by("vm", 10)
    records[4]["execution"] = ran_by("vm", 11)  # diffmavil seed 1: another invocation
    assert paired_deltas(_typed(records))[0].wall_clock_split_pairs == 1
    records[4]["execution"] = ran_by("other", 10)  # same pid, another host
    assert paired_deltas(_typed(records))[0].wall_clock_split_pairs == 1
    # a run whose wall-clock is not comparable (parallel workers) is left out of the pairs
    records[3]["wall_clock_comparable"] = False
    assert paired_deltas(_typed(records))[0].wall_clock_pairs == 2
    assert paired_deltas(_typed(records))[0].wall_clock_split_pairs == 1


def test_summary_table_puts_cost_accuracy_and_verdict_on_one_line(tmp_path: Path) -> None:
    from bench.report.render import render_report

    walls = {"mavil": [100.0, 200.0, 150.0], "diffmavil": [80.0, 170.0, 120.0]}
    records = [
        _record(row, s, acc, wall_clock_seconds=walls[row][s], total_flops=flops)
        for row, accs, flops in (
            ("mavil", [0.60, 0.70, 0.65], 1000),
            ("diffmavil", [0.61, 0.72, 0.68], 800),
        )
        for s, acc in enumerate(accs)
    ] + [_record("control: random-init", s, 0.40, kind="control", init="random") for s in range(3)]
    write_results(tmp_path / "g", records, {"grid": "s", "statistics": GRID["statistics"]}, True)
    written = render_report(tmp_path / "g", ("md",), tmp_path / "out")
    text = written["md"].read_text()
    assert "**Cost and accuracy per row, with verdicts**" in text
    line = next(x for x in text.splitlines() if x.startswith("| diffmavil | 3 |"))
    assert "| −20.0% |" in line  # FLOPs
    assert "−18.3% [" in line  # paired wall-clock delta: mean of -20, -15, -20 %
    assert "| +27.0 |" in line and "vs mavil: no loss within the margin" in line
    assert "pairs split" not in line
    assert text.index("Cost and accuracy per row") < text.index("Pre-training cost and downstream")
    # one pair whose runs ran in different invocations is flagged in the runs' cell
    for record in records:
        pid = 8 if record["run_id"] == "diffmavil@2" else 7
        record["execution"] = {"host": "vm", "pid": pid, "token": "t", "started_at": 0.0,
                               "finished_at": 1.0}  # fmt: skip
    write_results(tmp_path / "g", records, {"grid": "s", "statistics": GRID["statistics"]}, True)
    text = render_report(tmp_path / "g", ("md",), tmp_path / "out2")["md"].read_text()
    line = next(x for x in text.splitlines() if x.startswith("| diffmavil | 3 |"))
    assert "−18.3% [" in line and "], 1/3 pairs split |" in line
    assert '"k/n pairs split"' in text


def test_table2_grid_carries_its_statistical_design() -> None:
    """The shipped Table 2: confirmatory comparisons named, more seeds for their rows (6 in
    the first wave, 3 for the descriptive rows), >= 2,000 evaluation clips, the probe averaged over >= 3 probe seeds, a random-init
    control, the base-proportional preset."""
    from bench.ablate.grid import load_grid

    grid = load_grid(Path(__file__).resolve().parents[1] / "ablations" / "table2-endpoint.yaml")
    names = {(c.candidate, c.reference) for c in grid.statistics.comparisons}
    assert names == {("diffmavil", "mavil"), ("diffmavil", "mavil@diffmavil-flops")}
    confirmatory = {"mavil", "diffmavil", "mavil@diffmavil-flops"}
    for row in grid.rows:
        seeds = grid.seeds_of(row)
        assert len(seeds) >= (6 if row.name in confirmatory else 3), row.name
    assert grid.base.preset == "proportional" and grid.base.budget_samples == 32768
    assert grid.probe is not None and grid.probe.probe_seeds >= 3
    assert "eval_size=2000" in grid.probe.data
    assert "random" in grid.run.controls and grid.statistics.margin_points == 2.0
    assert grid.statistics.row_order == "shuffled"


def test_a_single_pair_shows_its_difference_without_a_verdict(tmp_path: Path) -> None:
    from bench.report.render import render_report

    records = [
        _record("mavil", 0, 0.60),
        _record("diffmavil", 0, 0.63),
        _record("control: random-init", 0, 0.40, kind="control", init="random"),
    ]
    spec = StatisticsSpec.model_validate(GRID["statistics"])
    first = confirmatory_verdicts(_typed(records), spec)[0]
    assert first.verdict == "not enough pairs" and first.mean_points == pytest.approx(3.0)
    gain = control_gains(_typed(records), spec)[0]
    assert gain.gain_points == pytest.approx(20.0) and gain.passes is None
    write_results(tmp_path / "g", records, {"grid": "s", "statistics": GRID["statistics"]}, False)
    text = render_report(tmp_path / "g", ("md",), tmp_path / "out")["md"].read_text()
    assert "| diffmavil vs mavil | 1 | +3.0 |" in text
    assert "Paired differences: skipped (no comparison has two completed pairs yet)" in text
