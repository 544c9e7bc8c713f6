"""diffbench ablate: grid validation (exit 2, one line naming file/row/key, nothing
written), expansion, dry run, compute-matched budgets and the aggregation math."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from bench.ablate.grid import GridError, load_grid, select_rows
from bench.ablate.plan import plan_config, solve_matched_budget
from bench.ablate.store import aggregate, read_results, write_results
from bench.cli.app import app
from bench.schema import GridRecord
from diffmavil.flops import model_flops

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "ablations" / "smoke.yaml"

GOOD = {
    "name": "t",
    "base": {
        "preset": "tiny",
        "variant": "mavil",
        "budget_samples": 16,
        "data": "synthetic:classes=4,size=16,eval_size=8",
        "batch": {"batch_size": 8},
    },
    "run": {"probe": {"epochs": 2}, "controls": ["fbank"]},
    "rows": {"mavil": {"baseline": True}, "diff": {"variant": "diff-self"}},
}


def _with(**changes):
    document = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        node = document
        *parents, leaf = dotted.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return document


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# (grid document or raw text, expected substrings of the error line)
BAD_GRIDS = {
    "unknown key": (
        _with(**{"rows/diff": {"masking.kindd": "curriculum"}}),
        ["row 'diff'", "key 'masking.kindd'", "did you mean 'masking.kind'"],
    ),
    "unknown nested model key": (
        _with(**{"rows/diff": {"model_overrides.video_decoder.knd": "cross"}}),
        [
            "row 'diff'",
            "model_overrides.video_decoder.knd",
            "did you mean 'model_overrides.video_decoder.kind'",
        ],
    ),
    "wrong type": (
        _with(**{"rows/diff": {"budget_samples": "lots"}}),
        ["row 'diff'", "key 'budget_samples'", "integer"],
    ),
    "out of range": (
        _with(**{"rows/diff": {"masking.audio": 1.5}}),
        ["row 'diff'", "key 'masking", "strictly between 0 and 1"],
    ),
    "bad decoder kind": (
        _with(**{"rows/diff": {"model_overrides.video_decoder.kind": "crosss"}}),
        ["row 'diff'", "key 'model_overrides': video_decoder.kind", "crosss", "'cross-self'"],
    ),
    "value, not a section": (
        _with(**{"rows/diff": {"budget_samples.x": 3}}),
        ["row 'diff'", "key 'budget_samples.x'", "'budget_samples' is a value, not a section"],
    ),
    "matched row with a budget": (
        _with(**{"rows/diff": {"budget.match_flops_of": "mavil", "budget_samples": 8}}),
        ["row 'diff'", "budget_samples conflicts with budget.match_flops_of"],
    ),
    "row key in the base": (
        _with(**{"base/baseline": True}),
        ["base: key 'baseline'", "set it in a row"],
    ),
    "grid axis not a list": (
        _with(grid={"masking.kind": "fixed"}),
        ["grid: key 'masking.kind'", "valid list", "(got 'fixed')"],
    ),
    "unknown variant": (
        _with(**{"rows/diff": {"variant": "crossattn"}}),
        ["row 'diff'", "key 'variant'", "did you mean 'cross-attn'"],
    ),
    "missing data path": (
        _with(**{"rows/diff": {"data": "esc50:/no/such/dir"}}),
        ["row 'diff'", "key 'data'", "does not exist"],
    ),
    "missing probe data": (
        _with(**{"run/probe": {"data": "spc:/no/such/dir"}}),
        ["key 'run.probe.data'", "does not exist"],
    ),
    "unknown probe key": (
        _with(**{"run/probe": {"epoch": 2}}),
        ["key 'run.probe.epoch'", "did you mean 'run.probe.epochs'"],
    ),
    "missing base_config": (
        _with(base_config="nowhere.yaml"),
        ["key 'base_config'", "nowhere.yaml", "not found"],
    ),
    "unknown match target": (
        _with(**{"rows/diff": {"budget.match_flops_of": "mavl"}}),
        ["row 'diff'", "key 'budget.match_flops_of'", "unknown row 'mavl'", "did you mean 'mavil'"],
    ),
    "unknown top-level key": (_with(rowz={}), ["key 'rowz'", "did you mean 'rows'"]),
    "two baselines": (_with(**{"rows/diff": {"baseline": True}}), ["more than one baseline"]),
    "bad seeds": (_with(seeds=[0, -1]), ["key 'seeds'"]),
    "inconsistent run": (
        _with(**{"run/flops_only": True}),
        ["key 'run': flops_only: no training, so no probe or controls"],
    ),
    "run not a mapping": (_with(run=[1]), ["key 'run': expected a mapping (got [1])"]),
    "unknown statistics key": (
        _with(statistics={"marign_points": 1}),
        ["key 'statistics.marign_points'", "did you mean 'statistics.margin_points'"],
    ),
    "unknown project_time preset": (
        _with(**{"run/project_time": {"preset": "tinny"}}),
        ["key 'run.project_time.preset'", "did you mean 'tiny'", "allowed: base, small"],
    ),
    "several problems": (
        _with(rowz={}, seeds=[-1]),
        ["key 'seeds': expected a list of integers >= 0 (got [-1]); key 'rowz': unknown"],
    ),
    "unknown time key": (
        _with(**{"run/time": {"repeat": 2}}),
        ["key 'run.time.repeat'", "did you mean 'run.time.repeats'"],
    ),
    "empty file": ("", ["the file is empty"]),
    "unparsable file": ("rows: [a, b\nname: x\n", ["not valid YAML", "line"]),
    "not a mapping": ("- a\n- b\n", ["expected a mapping"]),
}


@pytest.mark.parametrize("case", list(BAD_GRIDS))
def test_bad_grid_exits_2_with_one_line_and_writes_nothing(case, tmp_path, monkeypatch):
    document, expected = BAD_GRIDS[case]
    grid = tmp_path / "grid.yaml"
    grid.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    result = CliRunner().invoke(app, ["ablate", "--grid", str(grid), "--out", "out"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert str(grid) in lines[0]
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    assert _files(tmp_path) == before  # nothing run, nothing written


def test_missing_grid_file_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["ablate", "--grid", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "not found" in result.output


def test_unknown_row_selection_exits_2(tmp_path):
    result = CliRunner().invoke(
        app, ["ablate", "--grid", str(SMOKE), "--rows", "difmavil", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "did you mean 'diffmavil'" in result.output
    assert not (tmp_path / "o").exists()


def test_base_config_file_and_grid_expansion(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(GOOD["base"]))
    document = {
        "base_config": "base.yaml",
        "base": {"budget_samples": 24},
        "rows": {"a": {"baseline": True}, "b": {"variant": "cross-attn"}},
        "grid": {"masking.kind": ["fixed", "curriculum"], "optimizer": {"base_lr": [1e-4, 2e-4]}},
        "seeds": [3],
    }
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(document))
    grid = load_grid(tmp_path / "g.yaml", seeds=[1, 2])
    assert grid.seeds == [1, 2]
    assert len(grid.rows) == 2 * 2 * 2
    names = [row.name for row in grid.rows]
    assert "b[masking.kind=curriculum,optimizer.base_lr=0.0001]" in names
    row = grid.rows[names.index("b[masking.kind=curriculum,optimizer.base_lr=0.0001]")]
    assert row.config.variant == "cross-attn" and row.config.masking.kind == "curriculum"
    assert row.config.budget_samples == 24 and row.config.preset == "tiny"
    assert row.differences["variant"] == "cross-attn"
    assert [r.name for r in grid.rows if r.baseline] == [names[0]]


def test_base_config_problems_name_the_base_file(tmp_path):
    (tmp_path / "base.yaml").write_text("budget_sample: 24\n")
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(_with(base_config="base.yaml")))
    with pytest.raises(GridError) as raised:
        load_grid(tmp_path / "g.yaml")
    assert str(raised.value) == (
        f"{tmp_path / 'base.yaml'}: base: key 'budget_sample': unknown key "
        "(did you mean 'budget_samples'?)"
    )


def test_a_grid_is_frozen_and_row_selection_copies_it():
    grid = load_grid(SMOKE)
    with pytest.raises(ValidationError):
        grid.rows[0].baseline = False
    names = [row.name for row in grid.rows]
    chosen = select_rows(grid, ["mavil@diffmavil-flops"])
    assert [row.name for row in chosen.rows] == ["mavil", "mavil@diffmavil-flops"]
    assert [row.name for row in grid.rows] == names  # the whole grid is left as it was
    # the kept matched row keeps the budget solved against the whole grid
    assert chosen.rows[1].config == grid.rows[names.index("mavil@diffmavil-flops")].config
    assert chosen.rows[1].differences["budget_samples"] == chosen.rows[1].config.budget_samples


def test_dry_run_prints_every_row_with_plan_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["ablate", "--grid", str(SMOKE), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == []
    grid = load_grid(SMOKE)
    for row in grid.rows:
        assert row.name in result.output
    assert "budget_samples=" in result.output  # the solved budget is shown as a difference
    json_result = CliRunner().invoke(
        app, ["ablate", "--grid", str(SMOKE), "--dry-run", "--format", "json"]
    )
    rows = json.loads(json_result.output)
    by_name = {row["row"]: row for row in rows}
    assert by_name["diffmavil"]["planned_flops"] == plan_config(grid.rows[4].config).total_flops
    assert by_name["mavil"]["baseline"] and by_name["mavil"]["delta_flops_pct"] == 0.0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["smoke.yaml", "table2-endpoint.yaml", "table2-flops.yaml"])
def test_match_flops_of_solves_the_budget(path):
    grid = load_grid(ROOT / "ablations" / path)
    by_name = {row.name: row for row in grid.rows}
    matched = [row for row in grid.rows if row.match_flops_of]
    assert matched, "table2 grids carry a compute-matched control"
    for row in matched:
        target = plan_config(by_name[row.match_flops_of].config).total_flops
        got = plan_config(row.config).total_flops
        config = row.config
        # one more sample costs at most one sample's FLOPs at the least masked ratios
        one_sample = model_flops(config.model, config.masking.start, 1).total
        assert abs(got - target) <= one_sample
        assert row.config.budget_samples != by_name[row.match_flops_of].config.budget_samples
        # and it is the closest budget: its neighbours are no closer
        for other in (config.budget_samples - 1, config.budget_samples + 1):
            assert abs(plan_config(config, other).total_flops - target) >= abs(got - target)


def test_solver_on_a_curriculum_row():
    grid = load_grid(SMOKE)
    row = next(r for r in grid.rows if r.name == "diffmavil")
    target = plan_config(grid.baseline.config).total_flops * 3 // 4
    budget = solve_matched_budget(row.config, target)
    assert (
        abs(plan_config(row.config, budget).total_flops - target)
        <= model_flops(row.config.model, row.config.masking.start, 1).total
    )


def _record(row, seed, flops, wall, accuracy, status="completed", baseline=False):
    return {
        "row": row,
        "kind": "row",
        "seed": seed,
        "run_id": f"{row}-{seed}",
        "status": status,
        "baseline": baseline,
        "total_flops": flops,
        "wall_clock_seconds": wall,
        "probe": {
            "init": "checkpoint",
            "mode": "probe",
            "modality": "audio",
            "data": "synthetic",
            "accuracy": accuracy,
        },
        "wall_clock_comparable": True,
    }


def test_aggregation_math_on_a_known_table(tmp_path):
    records = [
        _record("base", 0, 100.0, 10.0, 0.50, baseline=True),
        _record("base", 1, 100.0, 14.0, 0.60, baseline=True),
        _record("new", 0, 70.0, 9.0, 0.52),
        _record("new", 1, 70.0, 9.0, 0.58),
        _record("new", 2, 70.0, 99.0, 0.0, status="failed"),
        _record("one", 0, 50.0, 6.0, 0.40),
    ]
    table = aggregate([GridRecord.model_validate(r) for r in records]).set_index("row")
    assert list(table.index) == ["base", "new", "one"]
    assert table.loc["base", "wall_clock_seconds_mean"] == 12.0
    assert table.loc["base", "wall_clock_seconds_std"] == pytest.approx(math.sqrt(8.0))
    assert table.loc["new", "n"] == 2 and table.loc["new", "n_failed"] == 1
    assert table.loc["new", "status"] == "partial"
    assert table.loc["new", "delta_flops_pct"] == pytest.approx(-30.0)
    # paired by seed: the mean of 9 / 10 - 1 and 9 / 14 - 1 (not 9 / 12 - 1)
    assert table.loc["new", "delta_wall_clock_pct"] == pytest.approx(-100 * (0.1 + 5 / 14) / 2)
    assert table.loc["new", "delta_accuracy_points"] == pytest.approx(0.0)
    assert table.loc["one", "delta_accuracy_points"] == pytest.approx(-10.0)  # seed 0: 40 - 50
    assert table.loc["one", "single_seed"] and not table.loc["new", "single_seed"]
    assert math.isnan(table.loc["one", "probe.accuracy_std"])
    assert table.loc["base", "baseline"] and not table.loc["one", "baseline"]

    from diffmavil.environment import environment

    meta = {"grid": "known", "seeds": [0, 1, 2], "environment": environment("cpu")}
    write_results(tmp_path, records, meta, complete=True)
    payload = read_results(tmp_path)  # typed: bench.schema.GridResults
    assert payload.schema_version == 4 and len(payload.records) == 6
    assert payload.records[0].probe.accuracy == 0.50 and payload.paper_headline is not None
    rows = json.loads((tmp_path / "aggregate.json").read_text())["rows"]
    assert rows[2]["probe.accuracy_std"] is None  # NaN -> null
    assert (tmp_path / "aggregate.csv").read_text().splitlines()[0].startswith("row,")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_results_of_another_schema_are_refused(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 99, "records": []}))
    with pytest.raises(ValueError, match="schema_version 99"):
        read_results(tmp_path)


def test_flops_only_grid_writes_planned_whole_run_totals(tmp_path):
    grid_path = ROOT / "ablations" / "table2-flops.yaml"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["ablate", "--grid", str(grid_path), "--out", str(out), "--no-report"]
    )
    assert result.exit_code == 0, result.output
    grid = load_grid(grid_path)
    records = [r.model_dump() for r in read_results(out).records]
    assert [r["row"] for r in records] == [row.name for row in grid.rows]
    for record, row in zip(records, grid.rows, strict=True):
        plan = plan_config(row.config)
        assert record["status"] == "planned" and record["kind"] == "flops"
        assert record["total_flops"] == plan.total_flops and record["steps"] == plan.steps
        assert record["flops_by_component"] == plan.flops_by_component
        assert record["preset"] == "base"
    aggregate = {r["row"]: r for r in json.loads((out / "aggregate.json").read_text())["rows"]}
    mavil, diffmavil = records[0]["total_flops"], records[4]["total_flops"]
    assert aggregate["diffmavil"]["delta_flops_pct"] == pytest.approx(
        100 * (diffmavil - mavil) / mavil
    )
    assert aggregate["diffmavil"]["status"] == "planned"
    assert not list(out.rglob("checkpoint.pt"))  # nothing trained


def test_a_row_without_snapshots_is_probed_at_its_final_snapshot_only(tmp_path):
    """With ``run.curve``, a row outside the comparisons may set ``snapshot_every: null``:
    its task has no curve (and its run id no curve probe); a compared row may not."""
    import yaml

    from bench.ablate.grid import GridError, load_grid
    from bench.ablate.orchestrate import build_tasks

    document = yaml.safe_load((ROOT / "ablations" / "tta-smoke.yaml").read_text())
    document["rows"]["diff-self"] = {"variant": "diff-self", "snapshot_every": None}
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(document))
    tasks = {(t.row, t.seed): t for t in build_tasks(load_grid(path), tmp_path / "out")}
    assert tasks[("diff-self", 0)].curve is None
    assert tasks[("mavil", 0)].curve is not None
    assert "snapshot_every" not in tasks[("diff-self", 0)].pretrain

    document["rows"]["diffmavil"]["snapshot_every"] = None
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(GridError, match="row 'diffmavil' takes no snapshots"):
        load_grid(path)
