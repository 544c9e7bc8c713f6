"""Time to accuracy end to end at the tiny preset (2 rows x 2 seeds, seconds): a grid with
``snapshot_every``, ``run.curve``, ``run.finetune``, targets and a primary endpoint. The
stored curve points are the snapshot index's and a direct ``evaluate`` of the snapshots';
the endpoints recompute from the stored curves by hand (the interpolation written out
here); a run that never reaches a target is censored and kept; a resumed grid evaluates
nothing twice; the report renders the new sections. And the grid checks of the new keys."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from bench.ablate.grid import GridError, load_grid
from bench.ablate.store import read_results
from bench.cli.app import app
from diffmavil.training.config import FinetuneConfig
from diffmavil.training.downstream import evaluate
from diffmavil.training.snapshots import read_index

DATA = "synthetic:classes=4,size=16,eval_size=8"
TARGETS = [1.0, 40.0, 99.0]  # reached at once, perhaps between snapshots, never
GRID = {
    "name": "tta",
    "base": {
        "preset": "tiny",
        "variant": "mavil",
        "data": DATA,
        "budget_samples": 24,
        "batch": {"batch_size": 8},
        "snapshot_every": 8,
        "threads": 1,
        "checkpoint_every": 1,
    },
    "seeds": [0, 1],
    "run": {
        "probe": {"data": DATA, "epochs": 3, "batch_size": 16, "probe_seeds": 2},
        "curve": {"probe_seeds": 1},
        "controls": ["random"],
        "finetune": {"rows": ["mavil", "diffmavil"], "epochs": 1, "batch_size": 16},
    },
    "statistics": {
        "targets": TARGETS,
        "primary": {"endpoint": "flops_to_target", "target": 40.0},
        "comparisons": [{"candidate": "diffmavil", "reference": "mavil"}],
    },
    "rows": {
        "mavil": {"baseline": True},
        "diffmavil": {"variant": "cross-attn", "masking.kind": "curriculum"},
    },
}


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tta")
    out = folder / "out"
    grid = _write(folder, GRID)
    result = CliRunner().invoke(app, ["ablate", "--grid", str(grid), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return grid, out, read_results(out)


def _rows(results):
    return [r for r in results.records if r.kind == "row"]


def test_curve_points_are_the_snapshot_index_and_a_direct_evaluate(grid_run):
    _, out, results = grid_run
    rows = _rows(results)
    assert len(rows) == 4 and all(r.status == "completed" for r in rows)
    probe = FinetuneConfig(data=DATA, epochs=3, batch_size=16)
    for record in rows:
        run_dir = out / record.run_dir
        index = read_index(run_dir)["snapshots"]
        assert [p.snapshot for p in record.curve] == [e["file"] for e in index]
        for point, entry in zip(record.curve, index, strict=True):
            assert (point.samples, point.flops, point.step, point.final) == (
                entry["samples"],
                entry["flops"],
                entry["step"],
                entry["final"],
            )
            assert point.wall_clock_seconds == entry["wall_clock_seconds"]
        assert [p.samples for p in record.curve] == [8, 16, 24]
        assert record.curve[-1].flops == record.total_flops  # the whole run at the end
        # the final point is the run's probe (2 probe seeds), the others 1 probe seed each
        assert record.curve[-1].accuracy == record.probe.accuracy
        assert [p.probe_seeds for p in record.curve] == [1, 1, 2]
        assert record.curve_seconds > 0 and record.wall_clock_seconds < record.task_seconds
    record = rows[0]
    model = load_grid(grid_run[0]).rows[0].config.model
    at_seed = probe.model_copy(update={"seed": record.seed})
    first = evaluate(at_seed, "checkpoint", model, out / record.run_dir / record.curve[0].snapshot)
    assert first["accuracy"] == record.curve[0].accuracy
    final = at_seed.model_copy(update={"probe_seeds": 2})
    last = evaluate(final, "checkpoint", model, out / record.run_dir / record.curve[-1].snapshot)
    assert last["accuracy"] == record.curve[-1].accuracy


def test_the_finetune_column_is_the_final_snapshot_and_random_init_finetuned(grid_run):
    grid, out, results = grid_run
    tuned = FinetuneConfig(data=DATA, mode="finetune", epochs=1, batch_size=16)
    for record in results.records:
        assert record.finetune is not None and record.finetune.mode == "finetune"
        assert record.finetune.init == ("random" if record.kind == "control" else "checkpoint")
        assert record.finetune_seconds > 0
    record = next(r for r in _rows(results) if r.row == "diffmavil")
    model = load_grid(grid).rows[1].config.model
    direct = evaluate(
        tuned.model_copy(update={"seed": record.seed}),
        "checkpoint",
        model,
        out / record.run_dir / record.curve[-1].snapshot,
    )
    assert direct["accuracy"] == record.finetune.accuracy


def _first_crossing(xs: list[float], accuracy: list[float], target: float) -> tuple[float, bool]:
    """Written out: the first snapshot at or above the target, interpolated linearly back
    to the one before it; the first snapshot if that already reaches it; else censored at
    the last x."""
    for i, value in enumerate(accuracy):
        if value >= target:
            if i == 0:
                return xs[0], True
            share = (target - accuracy[i - 1]) / (value - accuracy[i - 1])
            return xs[i - 1] + share * (xs[i] - xs[i - 1]), True
    return xs[-1], False


def _x(point, axis: str) -> float:
    return {"samples": point.samples, "flops": point.flops}.get(axis, point.wall_clock_seconds)


def _by_hand(results, axis: str, target: float) -> dict[str, dict[int, tuple[float, bool]]]:
    times: dict[str, dict[int, tuple[float, bool]]] = {}
    for record in _rows(results):
        xs = [float(_x(p, axis)) for p in record.curve]
        accuracy = [100 * p.accuracy for p in record.curve]
        times.setdefault(record.row, {})[record.seed] = _first_crossing(xs, accuracy, target)
    return times


AXES = {"samples_to_target": "samples", "flops_to_target": "flops"}
AXES["wall_clock_to_target"] = "wall_clock"


def test_endpoints_recompute_from_the_stored_curves_by_hand(grid_run):
    _, _, results = grid_run
    endpoints = {(e.endpoint, e.target): e for e in results.endpoints}
    assert len(endpoints) == 3 * len(TARGETS) + 3  # 3 times x targets, AUC, probe, fine-tune
    for (name, target), endpoint in endpoints.items():
        if target is None:
            continue
        times = _by_hand(results, AXES[name], target)
        assert endpoint.seeds == [0, 1] and endpoint.n == 2  # censored runs are kept
        assert endpoint.candidate_values == pytest.approx(
            [times["diffmavil"][s][0] for s in (0, 1)]
        )
        assert endpoint.reference_values == pytest.approx([times["mavil"][s][0] for s in (0, 1)])
        both = [s for s in (0, 1) if times["diffmavil"][s][1] and times["mavil"][s][1]]
        assert endpoint.reached_both == both
        assert endpoint.candidate_censored == [s for s in (0, 1) if not times["diffmavil"][s][1]]
        if len(both) < 2:  # a ratio needs 5/6 of the pairs, and at least 2
            assert endpoint.estimate is None and endpoint.low is None
            continue
        logs = [math.log(times["diffmavil"][s][0] / times["mavil"][s][0]) for s in both]
        assert endpoint.estimate == pytest.approx(math.exp(np.mean(logs)))
        spread = np.std(logs, ddof=1) / math.sqrt(2)
        if endpoint.role == "primary":  # one-sided 95% each side: t_0.95 with 1 df
            half = stats.t.ppf(0.95, 1) * spread
        else:
            half = stats.t.ppf(0.975, 1) * spread
        assert endpoint.low == pytest.approx(math.exp(np.mean(logs) - half))
        assert endpoint.high == pytest.approx(math.exp(np.mean(logs) + half))
    never = endpoints[("flops_to_target", 99.0)]
    assert never.reached_both == [] and never.candidate_censored == [0, 1]
    assert never.candidate_values == pytest.approx(
        [float(r.total_flops) for r in _rows(results) if r.row == "diffmavil"]
    )
    primary = endpoints[("flops_to_target", 40.0)]
    assert primary.role == "primary" and primary.sides == "one-sided bounds"
    if primary.estimate is None:
        assert primary.verdict == "not enough pairs"
    else:
        expected = "faster" if primary.high < 1 else "slower" if primary.low > 1 else "undecided"
        assert primary.verdict == expected
    assert all(e.role == "descriptive" for e in endpoints.values() if e is not primary)


def _trapezoid(xs: list[float], ys: list[float], x_max: float) -> float:
    area, points = 0.0, list(zip(xs, ys, strict=True))
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 >= x_max:
            break
        if x1 > x_max:  # cut at x_max, the accuracy there interpolated
            y1, x1 = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0), x_max
        area += (x1 - x0) * (y0 + y1) / 2
    return area


def test_auc_and_final_deltas_by_hand(grid_run):
    _, _, results = grid_run
    endpoints = {e.endpoint: e for e in results.endpoints if e.target is None}
    control = {r.seed: 100 * r.probe.accuracy for r in results.records if r.kind == "control"}
    rows = {(r.row, r.seed): r for r in _rows(results)}
    differences = []
    for seed in (0, 1):
        curves = {row: rows[(row, seed)].curve for row in ("diffmavil", "mavil")}
        x_max = min(curve[-1].flops for curve in curves.values())
        means = {
            row: _trapezoid(
                [0.0, *(p.flops for p in curve)],
                [control[seed], *(100 * p.accuracy for p in curve)],
                x_max,
            )
            / x_max
            for row, curve in curves.items()
        }
        differences.append(means["diffmavil"] - means["mavil"])
    assert endpoints["auc_flops"].estimate == pytest.approx(np.mean(differences))
    for name, value in (("final_probe", "probe"), ("final_finetune", "finetune")):
        delta = [
            100 * getattr(rows[("diffmavil", s)], value).accuracy
            - 100 * getattr(rows[("mavil", s)], value).accuracy
            for s in (0, 1)
        ]
        assert endpoints[name].estimate == pytest.approx(np.mean(delta))
        half = stats.t.ppf(0.975, 1) * np.std(delta, ddof=1) / math.sqrt(2)
        assert endpoints[name].high == pytest.approx(np.mean(delta) + half)


def test_the_report_renders_the_time_to_accuracy_section(grid_run):
    _, out, results = grid_run
    text = (out / "report" / "report.md").read_text()
    section = text.split("## Time to accuracy: grid `tta`", 1)[1].split("\n## ", 1)[0]
    titles = [
        line for line in section.splitlines() if line.startswith("**") and line.endswith("**")
    ]
    assert titles == [  # the primary endpoint's verdicts first
        "**Primary endpoint: verdicts**",
        "**Time to accuracy, per comparison and target**",
        "**Area under the curve and final accuracy, per comparison**",
        "**Fine-tune accuracy per row, with random init**",
    ]
    assert "no ratio: 0/2 reached both (needs 2)" in section  # the 99% target: censored
    assert "descriptive" in section and "FLOPs to 40%" in section
    with open(out / "report" / "tta-tta-curves.csv") as handle:
        lines = list(csv.DictReader(handle))
    mavil = [line for line in lines if line["row"] == "mavil"]
    assert [float(line["samples"]) for line in mavil] == [0, 8, 16, 24]
    control = [100 * r.probe.accuracy for r in results.records if r.kind == "control"]
    assert float(mavil[0]["accuracy_mean"]) == pytest.approx(np.mean(control))
    at_8 = [100 * r.curve[0].accuracy for r in _rows(results) if r.row == "mavil"]
    assert float(mavil[1]["accuracy_min"]) == pytest.approx(min(at_8))
    assert (out / "report" / "tta-tta-curves.png").stat().st_size > 0


def test_a_resumed_task_evaluates_nothing_it_stored(grid_run, tmp_path):
    grid, out, results = grid_run
    record = _rows(results)[0]
    run_dir = out / record.run_dir
    stored = [*sorted((run_dir / "curve").iterdir()), run_dir / "finetune.json"]
    before = {path: path.stat().st_mtime_ns for path in stored}
    assert len(before) == 3  # two interior snapshots, the fine-tune
    (run_dir / "record.json").unlink()  # as if killed before its record was written
    result = CliRunner().invoke(app, ["ablate", "--grid", str(grid), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 run(s), 5 skipped as done" in result.output
    assert {path: path.stat().st_mtime_ns for path in stored} == before
    again = next(r for r in read_results(out).records if r.run_id == record.run_id)
    assert again.curve == record.curve and again.finetune == record.finetune
    assert again.wall_clock_seconds == record.wall_clock_seconds  # not pre-trained again


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base": {**GRID["base"], "snapshot_every": None}}, "row 'mavil' takes no snapshots"),
        ({"run": {**GRID["run"], "curve": {"probe_seeds": 0}}}, "run.curve.probe_seeds"),
        ({"run": {**GRID["run"], "controls": []}}, "random-init control"),
        (
            {"run": {**GRID["run"], "finetune": {"rows": ["mavl"]}}},
            "run.finetune.rows.0': unknown row 'mavl' (did you mean 'mavil'?)",
        ),
        (
            {"run": {**GRID["run"], "finetune": {"rows": ["mavil"], "mode": "probe"}}},
            "mode: finetune",
        ),
        ({"run": {**GRID["run"], "finetune": {"rows": ["mavil"], "seed": 3}}}, "each run's seed"),
        ({"statistics": {"targets": [40.0, 40.0]}}, "a target is repeated"),
        ({"statistics": {"targets": [140.0]}}, "statistics.targets.0"),
        (
            {
                "statistics": {
                    **GRID["statistics"],
                    "primary": {"endpoint": "flops_to_target", "target": 50},
                }
            },
            "is not one of targets",
        ),
        (
            {
                "statistics": {
                    **GRID["statistics"],
                    "primary": {"endpoint": "auc_flops", "target": 40},
                }
            },
            "has no target",
        ),
        (
            {"statistics": {"targets": [40.0], "primary": {"endpoint": "final_probe"}}},
            "comparisons",
        ),
        (
            {
                "run": {**GRID["run"], "finetune": {"rows": ["mavil"]}},
                "statistics": {**GRID["statistics"], "primary": {"endpoint": "final_finetune"}},
            },
            "does not name 'diffmavil'",
        ),
        ({"run": {k: v for k, v in GRID["run"].items() if k != "curve"}}, "set run.curve"),
    ],
)
def test_the_new_keys_are_checked_before_anything_runs(tmp_path, change, message):
    with pytest.raises(GridError) as error:
        load_grid(_write(tmp_path, {**GRID, **change}))
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1


def test_run_ids_take_the_curve_and_finetune_only_when_set(tmp_path):
    with_all = load_grid(_write(tmp_path, GRID))
    plain_run = {k: v for k, v in GRID["run"].items() if k not in ("curve", "finetune")}
    plain = load_grid(_write(tmp_path, {**GRID, "run": plain_run, "statistics": {}}))
    ids = [(with_all.run_id(row, 0), plain.run_id(row, 0)) for row in with_all.rows]
    assert all(a != b for a, b in ids)
    from bench.ablate.plan import row_run_id

    row = plain.rows[0]
    assert plain.run_id(row, 0) == row_run_id(row.at_seed(0), plain.probe_at_seed(0), False)


def test_the_finetune_reads_the_probes_data_and_is_otherwise_the_default_finetune():
    from bench.requests import RunSpec

    probe = {"data": DATA, "modality": "audio-video", "features": "fused", "epochs": 3}
    run = RunSpec.model_validate(
        {"probe": probe, "controls": ["random"], "finetune": {"rows": ["a"], "epochs": 2}}
    )
    assert run.finetune is not None
    tuned = run.finetune.config(run.probe)
    default = FinetuneConfig(mode="finetune")
    assert tuned.data == DATA and tuned.epochs == 2
    assert (tuned.modality, tuned.features, tuned.lr) == (
        default.modality,
        default.features,
        default.lr,
    )
