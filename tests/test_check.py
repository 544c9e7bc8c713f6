"""``diffbench check``: the whole check passes on a CPU (bf16 and DDP skipped, each with
its reason), and every row fails once through a fault planted in the path it checks, so
that no row can only pass. A failing row makes the command exit 1."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from bench.cli.app import app
from bench.timing import check, check_training
from bench.timing.check import CheckContext, Outcome, run_rows

runner = CliRunner()


@pytest.fixture(scope="module")
def whole_check():
    result = runner.invoke(app, ["check", "--threads", "1", "-f", "json"])
    return result


def test_the_whole_check_passes_on_a_cpu(whole_check):
    assert whole_check.exit_code == 0, whole_check.output
    payload = json.loads(whole_check.stdout)
    statuses = {row["check"]: row["status"] for row in payload["rows"]}
    assert statuses == {
        "flops": "pass", "step fp32": "pass", "step bf16": "skip", "compile": "pass",
        "pretrain+resume": "pass", "probe": "pass", "finetune": "pass",
        "projection": "pass", "ddp": "skip",
    }  # fmt: skip
    rows = {row["check"]: row for row in payload["rows"]}
    assert rows["ddp"]["measured"] == "needs 2 or more CUDA devices (found 0)"
    assert rows["step bf16"]["measured"].startswith("bf16 autocast runs on CUDA")
    step = rows["step fp32"]
    assert step["step_ms"] > 0 and 0 < step["utilisation"] < 1.5 and step["peak_memory_mb"] > 0
    assert all(row["device"] == "cpu" for row in payload["rows"])
    assert payload["passed"] is True and payload["environment"]["torch_version"]
    assert payload["seconds"] < 180


# ------------------------------------------------------------------ one fault per row
@pytest.fixture
def context(tmp_path) -> CheckContext:
    return CheckContext(torch.device("cpu"), tmp_path)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> CheckContext:
    """A context whose pre-training row ran (the probe and the fine-tune need it)."""
    context = CheckContext(torch.device("cpu"), tmp_path_factory.mktemp("check"))
    (result,) = run_rows({"pretrain+resume": check_training.resume_row}, context)
    assert result.status == "pass", result
    return context


def _status(rows, context) -> tuple[str, str]:
    (result,) = run_rows(rows, context)
    return result.status, result.measured


def test_flops_fails_when_a_counter_disagrees(monkeypatch, context):
    import bench.flops.breakdown as breakdown

    closed_form = breakdown.model_flops

    def off_by_two(*args, **kwargs):
        flops = closed_form(*args, **kwargs)
        return dataclasses.replace(
            flops, forward={**flops.forward, "fusion": flops.forward["fusion"] + 2}
        )

    monkeypatch.setattr(breakdown, "model_flops", off_by_two)
    status, measured = _status({"flops": check.flops_row}, context)
    assert status == "fail" and "counters disagree" in measured


def _poisoned(monkeypatch) -> None:
    """Every train step's loss becomes NaN (the step's own testing knob)."""
    from diffmavil.training.step import TrainStep

    step = TrainStep.__call__
    monkeypatch.setattr(
        TrainStep, "__call__", lambda self, *a, **k: step(self, *a, **{**k, "poison_loss": True})
    )


def test_a_step_fails_with_a_non_finite_loss(monkeypatch, context):
    _poisoned(monkeypatch)
    status, measured = _status({"step fp32": check.step_row("fp32")}, context)
    assert status == "fail" and "losses NOT finite" in measured


def _fake_gpu(monkeypatch) -> None:
    """The bf16 row where it runs (a GPU, faked: bf16 autocast on the CPU, an H100's
    name for the MFU)."""
    monkeypatch.setattr(CheckContext, "cuda", property(lambda self: True))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    # The reference matmul in fp32: a CPU without bf16 units (an AMD EPYC VM) emulates a
    # 2048² bf16 matmul so slowly that the step's utilisation read 1541% and the test took
    # over three minutes; a GPU's reference runs in bf16 at full speed.
    import bench.timing.device as device_module

    reference = device_module.matmul_rate
    monkeypatch.setattr(
        device_module,
        "matmul_rate",
        lambda device, dtype, **kwargs: reference(device, "fp32", **{**kwargs, "size": 512}),
    )


def test_the_bf16_step_passes_and_fails_where_it_runs(monkeypatch, context):
    _fake_gpu(monkeypatch)
    status, measured = _status({"step bf16": check.step_row("bf16")}, context)
    assert status == "pass", measured
    _poisoned(monkeypatch)
    status, measured = _status({"step bf16": check.step_row("bf16")}, context)
    assert status == "fail" and "losses NOT finite" in measured


def test_compile_fails_when_it_silently_ran_eager(monkeypatch, context):
    import diffmavil.training.compile as compile_module

    monkeypatch.setattr(
        compile_module, "compile_components", lambda *a, **k: compile_module.CompileStats()
    )
    status, measured = _status({"compile": check.compile_row}, context)
    assert status == "fail" and "0 graph(s)" in measured


def test_resume_fails_when_the_checkpoint_is_not_found(monkeypatch, context):
    import diffmavil.training.pretrain as pretrain_module

    monkeypatch.setattr(pretrain_module, "resume_checkpoint", lambda *a, **k: (None, []))
    status, measured = _status({"pretrain+resume": check_training.resume_row}, context)
    assert status == "fail" and "resumed at step None" in measured


def test_the_probe_fails_without_an_accuracy(monkeypatch, pretrained):
    import diffmavil.training.downstream as downstream

    monkeypatch.setattr(downstream, "repeated_linear_probe", lambda *a: {"accuracy": float("nan")})
    status, measured = _status({"probe": check_training.probe_row}, pretrained)
    assert status == "fail" and "accuracy nan" in measured


def test_the_finetune_fails_without_a_training_loss(monkeypatch, pretrained):
    import diffmavil.training.downstream as downstream

    monkeypatch.setattr(downstream, "full_finetune", lambda *a, **k: {"accuracy": 1.5})
    status, measured = _status({"finetune": check_training.finetune_row}, pretrained)
    assert status == "fail" and "accuracy 1.5" in measured


def test_the_probe_without_a_pretrained_run_fails(context):
    status, measured = _status({"probe": check_training.probe_row}, context)
    assert status == "fail" and "needs the pre-training row's checkpoint" in measured


def test_the_projection_fails_when_its_parts_do_not_hold(monkeypatch, context):
    import bench.projection.measure as measure
    from bench.projection.check import projection_row
    from bench.projection.recipes import FixedCosts

    monkeypatch.setattr(measure, "measure_fixed", lambda *a: FixedCosts((-1.0,), (-1.0,)))
    status, measured = _status({"projection": projection_row}, context)
    assert status == "fail" and "a part is not positive" in measured


@pytest.mark.parametrize("ranks", [2, 1])
def test_ddp_compares_two_ranks_with_one_process(monkeypatch, context, ranks):
    """With two GPUs (faked) the row compares the DDP run with one process: a copy of the
    single run passes, a run that came up with one rank fails."""
    monkeypatch.setattr(CheckContext, "cuda", property(lambda self: True))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(check_training, "pretrain_config", _cpu_config)

    def fake_ddp(config, run_dir):
        shutil.copytree(context.workdir / "ddp-single", run_dir)
        summary = json.loads((run_dir / "summary.json").read_text())
        return {**summary, "world_size": ranks}

    monkeypatch.setattr(check_training, "run_ddp", fake_ddp)
    status, measured = _status({"ddp": check_training.ddp_row}, context)
    assert status == ("pass" if ranks == 2 else "fail"), measured
    assert measured.startswith(f"{ranks} rank(s), completed")


def _cpu_config(context, samples: int = 6, batch: int = 2):
    from diffmavil.training.config import PretrainConfig

    return PretrainConfig.model_validate(
        {
            "preset": "tiny", "data": check_training.DATA, "budget_samples": 4,
            "batch": {"batch_size": 2}, "threads": 1, "device": "cpu",
        }
    )  # fmt: skip


def test_a_row_that_crashes_fails_and_the_command_exits_1(monkeypatch):
    def crashes(context) -> Outcome:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("bench.cli.check.check_rows", lambda: {"flops": crashes})
    result = runner.invoke(app, ["check", "--threads", "1", "-f", "json"])
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)["rows"]
    assert row["status"] == "fail"
    assert row["measured"] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert "check failed: flops" in result.stderr
