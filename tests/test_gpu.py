"""What only CUDA shows (``gpu``: skipped without a GPU, never in CI): timing on the given
device, per-row peaks with reserved memory, TF32 set on purpose, one recipe at a time on
the device, the largest batch that fits, the datasheet entry of this GPU, and the whole
``diffbench check``. ``scripts/gpu_plan.sh`` runs them on a lent GPU."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from bench.cli.app import app

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]
runner = CliRunner()
TINY = ["--preset", "tiny", "--batch-size", "8", "--repeats", "3", "--warmup", "1"]


def test_this_gpu_is_in_the_datasheet_table():
    from bench.timing.device import mfu_peak

    name = torch.cuda.get_device_name()
    peak, label = mfu_peak(name, "bf16")
    assert peak is not None, label


def test_a_region_is_timed_on_its_own_device():
    from bench.timing.harness import RegionTimer

    last = torch.device(f"cuda:{torch.cuda.device_count() - 1}")
    a = torch.randn(2048, 2048, device=last)
    timer = RegionTimer(last)
    with timer.region("mm"):
        for _ in range(10):
            a @ a
    (seconds,) = timer.collect()["mm"]
    assert 0 < seconds < 1


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_time_on_the_second_gpu_runs_and_is_timed_there():
    result = runner.invoke(
        app, ["time", *TINY, "--device", "cuda:1", "--no-components", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    step = next(r for r in json.loads(result.stdout)["rows"] if r["phase"] == "step")
    assert step["gpu_name"] == torch.cuda.get_device_name(1)
    assert 0 < step["utilisation"] < 1.5


@pytest.mark.parametrize("tf32", [True, False])
def test_tf32_is_set_and_recorded(tf32):
    flag = "--tf32" if tf32 else "--no-tf32"
    result = runner.invoke(app, ["time", *TINY, "--device", "cuda", flag, "-f", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["environment"]["tf32_matmul"] is tf32
    assert all(row["tf32_matmul"] is tf32 for row in payload["rows"])


def test_rows_carry_their_own_peak_and_reserved_memory_is_reported():
    result = runner.invoke(app, ["time", *TINY, "--device", "cuda", "--peer", "--repeats", "10"])
    assert result.exit_code == 0, result.output
    assert "peak reserved" in result.stderr
    from bench.requests import TimeRequest
    from bench.timing.benchmark import run_time_benchmark

    measured = run_time_benchmark(
        TimeRequest(preset="tiny", batch_size=8, repeats=3, device="cuda")
    )
    peaks = {row.peak_memory_mb for row in measured.rows if row.kind in ("step", "component")}
    assert len(peaks) > 1  # the components alone hold less than the whole step
    for reading in measured.memory.values():
        assert reading.reserved_mb >= reading.allocated_mb > 0


def test_the_projection_keeps_one_recipe_on_the_device():
    from bench.projection.recipes import plan_recipe
    from bench.projection.steps import step_tasks
    from bench.timing.harness import RegionTimer
    from diffmavil.training.config import PretrainConfig

    def recipe(variant: str):
        config = PretrainConfig(
            preset="tiny", variant=variant, budget_samples=8, batch={"batch_size": 8},
            device="cuda",
        )  # fmt: skip
        return plan_recipe(variant, config, 2)

    cuda = torch.device("cuda")
    tasks, steppers = step_tasks({"a": recipe("mavil"), "b": recipe("cross-attn")}, cuda, False, 0)
    for name, task in tasks.items():
        task(RegionTimer(cuda))
        on_device = {n for n, s in steppers.items() if next(s.model.parameters()).is_cuda}
        assert on_device == {name.split("/")[0]}
        state = steppers[name.split("/")[0]].optimizer.state.values()
        assert all(v.is_cuda for s in state for v in s.values() if torch.is_tensor(v))


def test_the_largest_batch_search_on_cuda(monkeypatch):
    from bench.requests import TimeRequest
    from bench.timing.capacity import StepProbe, largest_batch
    from bench.timing.faults import PLANT_OOM

    monkeypatch.setenv(PLANT_OOM, "24")
    probe = StepProbe(TimeRequest(preset="tiny", device="cuda"), "cross-attn", torch.device("cuda"))
    found = largest_batch(probe, 8, 64)
    assert found.largest == 23 and probe.peaks[23].reserved_mb >= probe.peaks[23].allocated_mb


def test_the_whole_check_passes_on_cuda():
    result = runner.invoke(app, ["check", "--device", "cuda", "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["check"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["step bf16"]["status"] == "pass" and rows["step bf16"]["mfu"] is not None
    expected_ddp = "pass" if torch.cuda.device_count() >= 2 else "skip"
    assert rows["ddp"]["status"] == expected_ddp
