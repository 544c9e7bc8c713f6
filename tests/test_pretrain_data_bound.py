"""pretrain's summary: data vs compute seconds, and when the data pipeline bounds a run."""

from __future__ import annotations

import json
import time

import pytest
import torch

from bench.cli.options import OutputFormat
from bench.cli.pretrain import _print_summary
from diffmavil.data import build_dataset
from diffmavil.training.config import PretrainConfig
from diffmavil.training.metrics import DATA_BOUND_RATIO, data_bound
from diffmavil.training.pretrain import pretrain

DATA = "synthetic:classes=4,size=16,eval_size=8"
SECONDS_PER_ITEM = 0.3


class SlowDataset(torch.utils.data.Dataset):
    """A dataset whose items take at least SECONDS_PER_ITEM each (a slow pipeline)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        time.sleep(SECONDS_PER_ITEM)
        return self.inner[index]


def test_data_bound_is_the_ratio_against_the_threshold():
    assert data_bound(1.0, 4.0) == {"data_to_compute_ratio": 0.25, "data_bound": False}
    assert data_bound(6.0, 4.0) == {"data_to_compute_ratio": 1.5, "data_bound": True}
    assert data_bound(DATA_BOUND_RATIO * 2.0, 2.0)["data_bound"]


def test_a_slow_pipeline_is_reported_as_bounding_the_run(tmp_path, capsys):
    config = PretrainConfig(
        preset="tiny", data=DATA, budget_samples=8, batch={"batch_size": 4}, threads=2
    )
    slow = SlowDataset(build_dataset(DATA, config.model, "train", seed=0))
    summary = pretrain(config, tmp_path / "run", dataset=slow)
    assert summary["data_seconds"] >= 8 * SECONDS_PER_ITEM
    ratio = summary["data_seconds"] / summary["compute_seconds"]
    assert summary["data_to_compute_ratio"] == pytest.approx(ratio)
    # No timed assertion: on an idle machine the 2.4 s of sleep outweigh two tiny steps, on
    # a loaded one maybe not; the flag and the printed note must follow the ratio.
    assert summary["data_bound"] is (ratio >= DATA_BOUND_RATIO)
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["data_bound"] is summary["data_bound"] and on_disk["compile"] is None
    _print_summary(summary, tmp_path / "run", OutputFormat.json)
    err = capsys.readouterr().err
    assert ("the data pipeline bounds this run" in err) is summary["data_bound"]
    if summary["data_bound"]:
        assert f"({ratio:.2f}x)" in err


def test_the_note_names_the_ratio(tmp_path, capsys):
    _print_summary(_summary(data=6.0, compute=4.0), tmp_path, OutputFormat.json)
    err = capsys.readouterr().err
    assert "the data pipeline bounds this run: data 6.0 s vs compute 4.0 s (1.50x)" in err


def test_no_note_when_compute_dominates(tmp_path, capsys):
    summary = json.loads(json.dumps(_summary(data=1.0, compute=9.0)))
    _print_summary(summary, tmp_path, OutputFormat.json)
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["data_to_compute"] == pytest.approx(1 / 9, abs=1e-3)
    assert "bounds" not in captured.err


def _summary(data: float, compute: float) -> dict:
    return {
        "run_id": "x", "status": "completed", "steps": 1, "samples": 1, "total_flops": 1,
        "wall_clock_seconds": data + compute, "compute_seconds": compute, "data_seconds": data,
        "samples_per_second": 1.0, "achieved_flops_per_second": 1.0, "final_losses": {},
        "skipped_files": 0, "compile": None, **data_bound(data, compute),
    }  # fmt: skip
