"""``diffbench data stats`` and ``data show``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bench.cli.app import app
from diffmavil.data import BadFileWarning, build_dataset, compute_norm_stats
from tests.data_helpers import tiny_config, write_garbage, write_wav

runner = CliRunner()


def test_stats_matches_library_and_reports_skipped(tmp_path) -> None:
    write_wav(tmp_path / "a.wav", 0.4)
    write_wav(tmp_path / "b.wav", 0.6, rate=8000, freq=300)
    write_garbage(tmp_path / "c.wav")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"wav": f"{n}.wav", "labels": n} for n in "abc"]))
    spec = f"manifest:{manifest}"
    result = runner.invoke(app, ["data", "stats", spec, "--preset", "tiny", "--format", "json"])
    assert result.exit_code == 0, result.output
    (payload,) = json.loads(result.stdout)
    with pytest.warns(BadFileWarning, match="c.wav"):
        dataset = build_dataset(spec, tiny_config(), "train")
    expected = compute_norm_stats(dataset)
    assert abs(payload["mean"] - expected.mean) < 1e-5
    assert abs(payload["std"] - expected.std) < 1e-5
    assert payload["items"] == 2 and payload["skipped"] == 1


def test_stats_text_on_synthetic() -> None:
    result = runner.invoke(
        app, ["data", "stats", "synthetic:classes=4,size=8", "--preset", "tiny", "--max-items", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "items 4" in result.stdout and "mean -" in result.stdout and "std  " in result.stdout


def test_show_prints_size_classes_skipped() -> None:
    result = runner.invoke(app, ["data", "show", "synthetic:classes=4,size=12", "--preset", "tiny"])
    assert result.exit_code == 0, result.output
    assert "size 12 | classes 4" in result.stdout and "skipped files 0" in result.stdout


def test_bad_spec_is_one_line_exit_2() -> None:
    result = runner.invoke(app, ["data", "stats", "bogus:/x", "--preset", "tiny"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown data spec 'bogus:/x'" in result.stderr
    result = runner.invoke(app, ["data", "show", "synthetic", "--preset", "huge"])
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0
    assert "'huge' is not one of 'base', 'small', 'cpu', 'proportional', 'tiny'" in result.stderr
