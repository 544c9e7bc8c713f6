"""``diffbench flops`` end to end, in-process (typer's CliRunner)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from bench.cli.app import app
from diffmavil import COMPONENTS, make_config
from diffmavil.flops import model_flops

runner = CliRunner()
TINY = ["flops", "--preset", "tiny"]
ROW_KEYS = (
    "variant",
    "preset",
    "component",
    "counter",
    "forward_flops",
    "backward_flops",
    "params",
    "audio_mask_ratio",
    "video_mask_ratio",
    "batch_size",
)


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_table_for_one_variant_all_counters():
    result = invoke(*TINY, "--variant", "cross-attn", "--counter", "all", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "torch=fvcore=analytic" in result.output
    for name in (*COMPONENTS, "total", "hw extra"):
        assert name in result.output


def test_json_rows_match_the_closed_form():
    args = ["-v", "mavil", "-v", "cross-attn", "--mask-ratio", "0.75,0.9", "--batch-size", "2"]
    result = invoke(*TINY, *args, "--counter", "torch", "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["counters"] == "torch=analytic"
    rows = payload["rows"]
    assert len(rows) == 2 * (len(COMPONENTS) + 1)
    expected = model_flops(make_config("tiny", "cross-attn"), (0.75, 0.9), 2)
    for row in rows:
        assert set(ROW_KEYS) <= set(row)
        assert row["audio_mask_ratio"] == 0.75 and row["batch_size"] == 2
        if row["variant"] == "cross-attn" and row["component"] in COMPONENTS:
            assert row["forward_flops"] == expected.forward[row["component"]]
            assert row["backward_flops"] == expected.backward[row["component"]]
    total = {r["variant"]: r for r in rows if r["component"] == "total"}
    mavil = model_flops(make_config("tiny", "mavil"), (0.75, 0.9), 2).total
    assert total["mavil"]["delta_percent"] == 0.0
    assert total["cross-attn"]["delta_percent"] == round(100 * (expected.total / mavil - 1), 2)


def test_csv_and_out_file(tmp_path):
    out = tmp_path / "flops.csv"
    result = invoke(*TINY, "--counter", "analytic", "--no-backward", "-f", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["component"] for r in rows] == [*COMPONENTS, "total"]
    assert all(r["backward_flops"] == "" for r in rows)
    assert out.read_text() == result.output


def test_side_by_side_table_has_deltas():
    result = invoke(*TINY, "-v", "mavil", "-v", "cross-attn-both", "--counter", "analytic")
    assert result.exit_code == 0, result.output
    assert "Δ% vs mavil" in result.output


def test_whole_run_json():
    recipe = ["--masking", "curriculum", "--batch", "adaptive", "--samples", "1e5"]
    result = invoke("flops", "--variant", "cross-attn", *recipe, "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["schema_version"] == 2 and payload["flops_kind"] == "whole-run"
    assert payload["paper_headline"]["figures"][0]["figure"] == "flops_saving"
    rows = payload["rows"]
    total = next(r for r in rows if r["component"] == "total")
    assert total["samples"] == 100_000 and total["steps"] < total["baseline_steps"]
    assert 20 < total["saving_percent"] < 25


def test_sensitivity_table():
    recipe = ["--masking", "curriculum", "--batch", "adaptive", "--samples", "2e4"]
    result = invoke("flops", "--sensitivity", *recipe)
    assert result.exit_code == 0, result.output
    for text in ("decoder width", "curriculum end", "batch rule", "32%"):
        assert text in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mask-ratio", "0.8,1.2"], "allowed values lie strictly between 0 and 1"),
        (["--mask-ratio", "a,b"], "expected 'AUDIO,VIDEO'"),
        (
            ["--variant", "crossattn"],
            "'crossattn' is not one of 'mavil', 'diff-self', 'cross-attn', 'cross-attn-both'",
        ),
        (["--counter", "flopcounter"], "is not one of 'torch', 'fvcore', 'analytic', 'all'"),
        (["--masking", "ramp"], "'ramp' is not one of 'fixed', 'curriculum'"),
        (["--batch", "auto"], "'auto' is not one of 'fixed', 'adaptive'"),
        (["--masking", "fixed", "--samples", "-3"], "positive"),
        (["--decoder-video", "crossx"], "'crossx' is not one of 'self', 'cross', 'cross-self'"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(args, message):
    result = invoke(*TINY, "--counter", "analytic", *args)
    assert result.exit_code == 2, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0]


def test_disagreement_is_loud_and_nonzero(monkeypatch):
    import dataclasses

    import bench.flops.torch_counter as torch_counter

    real = torch_counter.count_torch

    def broken(*args, **kwargs):
        result = real(*args, **kwargs)
        forward = dict(result.forward, fusion=result.forward["fusion"] + 1)
        return dataclasses.replace(result, forward=forward, global_forward=sum(forward.values()))

    monkeypatch.setattr(torch_counter, "count_torch", broken)
    result = invoke(*TINY, "--counter", "torch", "--no-backward")
    assert result.exit_code == 1
    assert "FLOP COUNT REJECTED" in result.output and "fusion forward" in result.output
