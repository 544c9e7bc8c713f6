"""Checkpoint files: weights-only loading (a pickled object is refused, never run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from diffmavil.training.checkpoint import UnsafeCheckpoint, load_checkpoint
from diffmavil.training.config import PretrainConfig

DATA = "synthetic:classes=4,size=48,eval_size=16"


class _RunsCodeWhenUnpickled:
    """Unpickling this calls ``exec``: it writes ``marker`` (proof that code ran)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _write_code_carrying_checkpoint(run_dir: Path, marker: Path) -> Path:
    """A pretrain-shaped run directory whose checkpoint.pt also pickles a code object."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = PretrainConfig.model_validate({"preset": "tiny", "data": DATA, "budget_samples": 8})
    (run_dir / "config.json").write_text(json.dumps(config.model_dump(mode="json")))
    path = run_dir / "checkpoint.pt"
    torch.save({"model": {}, "next_step": 0, "extra": _RunsCodeWhenUnpickled(marker)}, path)
    return path


def test_a_checkpoint_carrying_a_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    path = _write_code_carrying_checkpoint(tmp_path / "run", marker)
    with pytest.raises(UnsafeCheckpoint) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert str(path) in message and "exec" in message and "\n" not in message
    assert not marker.exists()
    # the control: an unrestricted load of the same file does run its code
    torch.load(path, weights_only=False)
    assert marker.read_text() == "ran"


def test_finetune_cli_refuses_a_code_carrying_checkpoint_with_one_line(tmp_path):
    marker = tmp_path / "marker"
    path = _write_code_carrying_checkpoint(tmp_path / "run", marker)
    result = CliRunner().invoke(
        app, ["finetune", str(path.parent), "--data", "synthetic:classes=2,size=4,eval_size=4"]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert "refused" in lines[0]
    assert not marker.exists()
