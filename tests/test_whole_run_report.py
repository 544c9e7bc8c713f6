"""Whole-run projections in grids (``run.project_time``) and reports (paper headline and a
section of their own). The projection is assembled from given measurements (no timing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ablate.grid import GridError, load_grid
from bench.ablate.project_time import projection_request
from bench.projection.assemble import assemble
from bench.projection.recipes import (
    FixedCosts,
    Loading,
    Measurements,
    ProjectionRequest,
    Window,
    mavil_recipe,
    plan_recipe,
)
from bench.report.render import render_report
from diffmavil.training.config import PretrainConfig

GRID = """
name: projected
base:
  preset: tiny
  variant: mavil
  budget_samples: 64
  batch: {batch_size: 16}
run:
  pretrain: true
  project_time: {preset: cpu, samples: 3200, repeats: 3, anchors: 2, min_seconds: 0}
rows:
  mavil: {baseline: true}
  cross-attn: {variant: cross-attn}
  diffmavil: {variant: cross-attn, masking.kind: curriculum, batch.kind: adaptive}
  mavil-again: {variant: mavil, seed: 0}
  mavil@diffmavil-flops: {variant: mavil, budget.match_flops_of: diffmavil}
"""


def write_grid(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def test_grid_projection_request_keeps_rows_and_budget_ratios(tmp_path):
    grid = load_grid(write_grid(tmp_path, GRID))
    request = projection_request(grid)
    assert request.baseline == "mavil"
    # the duplicate of the baseline is measured once
    assert list(request.recipes) == ["mavil", "cross-attn", "diffmavil", "mavil@diffmavil-flops"]
    assert {c.preset for c in request.recipes.values()} == {"cpu"}
    assert request.recipes["diffmavil"].budget_samples == 3200
    assert request.recipes["diffmavil"].masking.kind == "curriculum"
    matched = next(r for r in grid.rows if r.name == "mavil@diffmavil-flops").config
    assert matched.budget_samples < 64
    assert request.recipes["mavil@diffmavil-flops"].budget_samples == round(
        3200 * matched.budget_samples / 64
    )
    assert (request.repeats, request.max_anchors, request.memory) == (3, 2, False)
    assert request.min_seconds == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{bogus: 1}", "run.project_time.bogus"),
        ("{preset: huge}", "unknown preset 'huge'"),
        ("{anchors: 1}", "run.project_time.anchors"),
    ],
)
def test_bad_project_time_names_the_key(tmp_path, spec, message):
    text = GRID.replace(
        "{preset: cpu, samples: 3200, repeats: 3, anchors: 2, min_seconds: 0}", spec
    )
    assert text != GRID
    with pytest.raises(GridError, match=message):
        load_grid(write_grid(tmp_path, text))


def assembled(
    request: ProjectionRequest,
    factors: tuple[float, ...],
    first_batch: int,
    windows: int,
    environment: dict,
):
    """``request``'s projection assembled from given measurements (the assembly is real):
    each measured point's repeats are its FLOPs / 2e11 seconds times ``factors``, in
    ``windows`` identical windows."""
    recipes = {n: plan_recipe(n, c, request.max_anchors) for n, c in request.recipes.items()}
    steps = {
        name: {
            i: [recipe.points[i].flops / 2e11 * f for f in factors]
            for i in recipe.selection.measured
        }
        for name, recipe in recipes.items()
    }
    window = Window(
        steps=steps,
        loading={n: Loading(0.5, first_batch, (0.05, 0.06), (0.001, 0.002), 2000) for n in recipes},
        fixed={n: FixedCosts((2.0, 2.2), (0.01, 0.01)) for n in recipes},
        matmul_flops_per_s=1e11,
    )
    measurements = Measurements(
        windows=[window] * windows,
        memory={n: (1000.0, "process_vm_hwm") for n in recipes},
        environment=environment,
    )
    return assemble(request, recipes, measurements)


def base_projection() -> dict:
    """A base-size projection assembled from fixed measurements (the assembly is real)."""
    full = PretrainConfig(
        preset="base",
        variant="cross-attn",
        masking={"kind": "curriculum"},
        batch={"kind": "adaptive", "batch_size": 32},
        budget_samples=64_000,
    )
    request = ProjectionRequest(recipes={"mavil": mavil_recipe(full), "diffmavil": full}, windows=1)
    environment = {"device_name": "AMD EPYC", "torch_threads": 2, "date": "2026-11-29T07:00:00"}
    result = assembled(request, (0.9, 1.0, 1.1, 1.0, 1.0), 32, 1, environment)
    rows = [r.model_dump() for r in result.rows] + [p.model_dump() for p in result.points]
    return {"environment": result.environment, "rows": rows}


def _table_rows(text: str, title: str) -> list[list[str]]:
    block = text.split(title, 1)[1]
    lines = [line for line in block.splitlines() if line.startswith("|")]
    end = next((i for i, line in enumerate(lines[1:], 1) if not line.strip()), len(lines))
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[:end]]


def test_base_projection_fills_the_headline_wall_clock_row(tmp_path):
    payload = base_projection()
    ours = next(r for r in payload["rows"] if r.get("recipe") == "diffmavil")
    path = tmp_path / "headline.json"
    path.write_text(json.dumps(payload))
    text = render_report(path, ("md",), tmp_path / "out")["md"].read_text()
    headline = _table_rows(text, "Pre-training saving of DiffMAViL vs MAViL")
    wall = [row for row in headline if row[0] == "pre-training wall-clock"]
    assert len(wall) == 1 and wall[0][1] == "−18%"
    low, high = ours["time_saving_ci_low"], ours["time_saving_ci_high"]
    assert wall[0][2] == f"−{ours['time_saving']:.1%} [−{high:.1%}, −{low:.1%}]"
    assert "base preset, fp32, cpu (AMD EPYC, 2 threads), 64,000 samples" in wall[0][3]
    assert f"batch {ours['batch']};" in wall[0][3]
    mavil = next(r for r in payload["rows"] if r.get("kind") == "whole_run" and r["baseline"])
    days = f"{ours['projected_seconds'] / 86400:,.1f} vs {mavil['projected_seconds'] / 86400:,.1f}"
    assert f"{days} days (MAViL) on this hardware" in wall[0][3]
    assert "not measured" not in "".join(wall[0])
    assert "Projected pre-training wall-clock per recipe" in text


def test_projection_next_to_grid_results_is_loaded(tmp_path, monkeypatch):
    from bench.report import load

    folder = tmp_path / "grid-out"
    folder.mkdir()
    (folder / "results.json").write_text("{}")
    (folder / "whole-run.json").write_text(json.dumps(base_projection()))
    monkeypatch.setattr(load, "load_ablation", lambda d: load.Ablation(d, {}, []))
    inputs = load.Inputs(folder)
    assert load._load_dir(folder, inputs)
    assert len(inputs.ablations) == 1 and len(inputs.projections) == 1
    assert inputs.projections[0].path.name == "whole-run.json"


def test_a_tiny_projection_stays_out_of_the_headline(tmp_path):
    payload = base_projection()
    rows = [{**r, "preset": "tiny"} if r["kind"] == "whole_run" else r for r in payload["rows"]]
    tiny = {**payload, "rows": rows}
    (tmp_path / "tiny.json").write_text(json.dumps(tiny))
    text = render_report(tmp_path / "tiny.json", ("md",), tmp_path / "out")["md"].read_text()
    wall = [
        row
        for row in _table_rows(text, "Pre-training saving of DiffMAViL vs MAViL")
        if row[0] == "pre-training wall-clock"
    ]
    assert wall[0][2] == "not measured"  # a tiny projection never stands beside the paper
    assert "Projected pre-training wall-clock per recipe" in text  # but has its section


def test_report_takes_several_inputs_together(tmp_path):
    """`diffbench report A B`: a small-preset input and a base-size projection in one report;
    the headline row comes from the base file, both projections get their section, and an
    input that does not exist is one line, exit 2."""
    from typer.testing import CliRunner

    from bench.cli.app import app

    payload = base_projection()
    rows = [{**r, "preset": "tiny"} if r["kind"] == "whole_run" else r for r in payload["rows"]]
    (tmp_path / "tiny.json").write_text(json.dumps({**payload, "rows": rows}))
    (tmp_path / "base.json").write_text(json.dumps(payload))
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "report",
            str(tmp_path / "tiny.json"),
            str(tmp_path / "base.json"),
            "-f",
            "md",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert "Projected whole-run wall-clock (tiny.json)" in text
    assert "Projected whole-run wall-clock (base.json)" in text
    assert f"from `{tmp_path / 'tiny.json'}, {tmp_path / 'base.json'}`" in text
    wall = [
        row
        for row in _table_rows(text, "Pre-training saving of DiffMAViL vs MAViL")
        if row[0] == "pre-training wall-clock"
    ]
    assert len(wall) == 1 and "(`base.json`)" in wall[0][3]
    missing = runner.invoke(app, ["report", str(tmp_path / "base.json"), str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert f"{tmp_path / 'nope'}: no such file or directory" in missing.output


def test_a_grid_projection_takes_its_interval_from_the_machines_history(tmp_path, monkeypatch):
    import bench.projection.measure as measure
    from bench.ablate.project_time import project_grid
    from bench.projection.history import MIN_HISTORY, read_history

    history = tmp_path / "history.jsonl"
    text = GRID.replace("min_seconds: 0}", f"min_seconds: 0, history: {history}}}")
    grid = load_grid(write_grid(tmp_path, text))
    scales = iter([1.0, 1.1, 0.9, 1.05, 0.95, 1.0])  # one machine's speed, projection by projection
    environment = {"device": "cpu", "device_name": "AMD EPYC", "cpu_model": "AMD EPYC",
                   "torch_threads": 2, "date": "2026-12-07"}  # fmt: skip

    def projected(request):
        scale = next(scales)
        return assembled(request, (0.95 * scale, scale, 1.05 * scale), 16, 2, environment)

    monkeypatch.setattr(measure, "project_whole_run", projected)
    recipes = len(projection_request(grid).recipes)
    for made in range(MIN_HISTORY + 1):
        out = tmp_path / f"grid-{made}"
        stored = json.loads(project_grid(grid, out).read_text())
        rows = [r for r in stored["rows"] if r.get("kind") == "whole_run"]
        assert {r["history_projections"] for r in rows} == {made}
        assert len(read_history(history)) == recipes * (made + 1)
    methods = {r["interval_method"] for r in rows}
    assert methods == {"history-t+systematic"}  # the sixth: from the 5 before it
    assert project_grid(grid, out) == out / "whole-run.json"  # the same request: reused
    assert len(read_history(history)) == recipes * (MIN_HISTORY + 1)
    # the history file is part of the request's identity (a grid without one keeps its hash)
    from diffmavil.training.config import config_hash

    plain = load_grid(write_grid(tmp_path, GRID))
    assert config_hash(projection_request(plain).model_dump(mode="json")) != stored["request_hash"]
