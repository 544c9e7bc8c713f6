"""``diffbench time --max-batch-fits``: doubling then bisection over batch sizes with a
train-step probe; only ``torch.OutOfMemoryError`` means "does not fit". A CPU never runs
out that way, so the out-of-memory error is planted (``bench.timing.faults``); the
projection's memory probe reports one as such."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from bench.cli.app import app
from bench.timing import capacity
from bench.timing.capacity import largest_batch
from bench.timing.faults import PLANT_OOM

runner = CliRunner()


@pytest.mark.parametrize(
    ("fits_up_to", "start", "limit", "largest", "probed"),
    [
        (37, 8, 4096, 37, [8, 16, 32, 64, 48, 40, 36, 38, 37]),
        (5, 8, 4096, 5, [8, 4, 6, 5]),
        (0, 2, 4096, 0, [2, 1]),
        (10**9, 8, 64, 64, [8, 16, 32, 64]),
        (50, 8, 40, 40, [8, 16, 32, 40]),
    ],
)
def test_doubling_then_bisection(fits_up_to, start, limit, largest, probed):
    found = largest_batch(lambda batch: batch <= fits_up_to, start, limit)
    assert found.largest == largest
    assert [batch for batch, _ in found.probes] == probed
    assert found.limit_reached == (fits_up_to >= limit)
    assert all(ok == (batch <= fits_up_to) for batch, ok in found.probes)


def test_an_error_that_is_not_out_of_memory_is_not_a_size_limit(monkeypatch):
    """A RuntimeError of another kind (here a CUDA launch failure's message) ends the
    search with that error instead of being read as 'too large'."""

    def failing(batch: int) -> None:
        if batch >= 4:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(capacity, "planted_out_of_memory", failing)
    request = capacity.TimeRequest(preset="tiny", batch_size=2, threads=1)
    probe = capacity.StepProbe(request, "cross-attn", torch.device("cpu"))
    with pytest.raises(RuntimeError, match="illegal memory access"):
        largest_batch(probe, 2, 64)


def test_the_cli_reports_the_largest_batch_that_fits(monkeypatch, one_thread):
    monkeypatch.setenv(PLANT_OOM, "6")
    result = runner.invoke(
        app,
        ["time", "--preset", "tiny", "--batch-size", "2", "--threads", "1", "-v", "mavil",
         "--max-batch-fits", "-f", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    (row,) = payload["rows"]
    assert (row["variant"], row["largest_batch"], row["limit_reached"]) == ("mavil", 5, False)
    assert [(p["batch"], p["fits"]) for p in row["probes"]] == [
        (2, True), (4, True), (8, False), (6, False), (5, True)
    ]  # fmt: skip
    assert row["peak_memory_mb"] > 0 and row["peak_memory_kind"] in (
        "process_vm_hwm",
        "process_max_rss",
    )
    assert payload["environment"]["device"] == "cpu"


def test_the_memory_probe_names_an_out_of_memory_child(monkeypatch):
    from bench.projection.measure import MemoryProbeFailed, measure_peak_memory
    from bench.projection.recipes import plan_recipe
    from diffmavil.training.config import PretrainConfig

    monkeypatch.setenv(PLANT_OOM, "4")  # the spawned child inherits it
    config = PretrainConfig(
        preset="tiny", variant="mavil", budget_samples=4, batch={"batch_size": 4}, threads=1
    )
    with pytest.raises(MemoryProbeFailed) as raised:
        measure_peak_memory(plan_recipe("b4", config, 4), compile=False)
    message = str(raised.value)
    assert message.startswith("memory probe of b4 (batch 4) ran out of memory (exit code 3)")
    assert "planted: batch 4 >= 4" in message and "\n" not in message
