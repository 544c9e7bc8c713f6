"""The timing harness: warm-up, repeats, interleaving, statistics, environment, and the
``diffbench time`` CLI (in-process, tiny preset). Performance is measured, never asserted."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from bench.cli.app import app
from bench.stats import bootstrap_ratio_of_medians, quantile
from bench.timing import harness
from bench.timing.device import (
    capture_environment,
    datasheet_peak_flops,
    matmul_rate,
)
from bench.timing.harness import RegionTimer, Stats, run_interleaved
from bench.timing.tasks import (
    TIMED_COMPONENTS,
    ComponentPass,
    TimedTrainStep,
    capture_component_calls,
)
from diffmavil import DiffMAViL, make_config
from diffmavil.environment import cpu_model
from diffmavil.inputs import random_inputs

runner = CliRunner()
FAST = ["--preset", "tiny", "--batch-size", "2", "--threads", "1", "--matmul-repeats", "1"]


# ------------------------------------------------------------------------ statistics
def test_stats_on_known_inputs():
    odd = Stats.of([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (odd.n, odd.median, odd.q1, odd.q3, odd.iqr) == (5, 3.0, 2.0, 4.0, 2.0)
    assert (odd.min, odd.max, odd.mean) == (1.0, 5.0, 3.0)
    even = Stats.of([4.0, 1.0, 3.0, 2.0])  # numpy's linear quartiles: 1.75, 2.5, 3.25
    assert (even.q1, even.median, even.q3) == (1.75, 2.5, 3.25)
    assert Stats.of([0.002]).as_ms() == {
        "median_ms": 2.0,
        "q1_ms": 2.0,
        "q3_ms": 2.0,
        "iqr_ms": 0.0,
        "min_ms": 2.0,
        "max_ms": 2.0,
    }


def test_quantile_matches_numpy():
    numpy = pytest.importorskip("numpy")
    values = sorted([0.3, 1.7, 0.2, 9.0, 4.4, 4.4, 2.5])
    for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
        assert quantile(values, q) == pytest.approx(float(numpy.quantile(values, q)))


def test_stats_refuse_empty_samples():
    with pytest.raises(ValueError):
        Stats.of([])


# ------------------------------------------------------------------------ harness
class FakeClock:
    """perf_counter replacement advanced by the tasks themselves: deterministic timing."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_warmup_is_excluded_and_repeats_are_counted(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(harness.time, "perf_counter", clock)
    calls = []

    def task(timer: RegionTimer) -> None:
        calls.append(timer.enabled)
        with timer.region("work"):
            # warm-up calls (timer disabled) would take 100 s, timed ones 1 s then 2 s, ...
            clock.now += 100.0 if not timer.enabled else float(sum(calls[3:]))

    samples = run_interleaved({"t": task}, warmup=3, repeats=4)
    assert calls == [False] * 3 + [True] * 4
    assert samples == {"t": {"work": [1.0, 2.0, 3.0, 4.0]}}


def test_rounds_rotate_the_task_order():
    order = []
    tasks = {name: (lambda timer, name=name: order.append(name)) for name in "abc"}
    run_interleaved(tasks, warmup=0, repeats=3)
    assert order == list("abc") + list("bca") + list("cab")


def test_nested_regions_are_timed_separately(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(harness.time, "perf_counter", clock)

    def task(timer: RegionTimer) -> None:
        with timer.region("outer"):
            clock.now += 1.0
            with timer.region("inner"):
                clock.now += 2.0

    assert run_interleaved({"t": task}, warmup=1, repeats=2)["t"] == {
        "inner": [2.0, 2.0],
        "outer": [3.0, 3.0],
    }


def test_min_seconds_adds_rounds_until_the_timed_rounds_last_that_long(monkeypatch):
    """2 rounds at least, then more until 4.5 (fake) seconds have passed: rounds start at
    0, 1, 2, 3, 4 s; at 5 s the loop stops. Warm-up time does not count."""
    clock = FakeClock()
    monkeypatch.setattr(harness.time, "perf_counter", clock)

    def task(timer: RegionTimer) -> None:
        with timer.region("work"):
            clock.now += 1.0 if timer.enabled else 50.0

    samples = run_interleaved({"t": task}, warmup=1, repeats=2, min_seconds=4.5)
    assert samples == {"t": {"work": [1.0] * 5}}
    assert len(run_interleaved({"t": task}, warmup=0, repeats=7, min_seconds=4.5)["t"]["work"]) == 7
    with pytest.raises(ValueError, match="min_seconds"):
        run_interleaved({"t": task}, warmup=0, repeats=1, min_seconds=-1.0)


def test_measure_rejects_bad_counts():
    with pytest.raises(ValueError):
        run_interleaved({"t": lambda timer: None}, warmup=-1, repeats=3)
    with pytest.raises(ValueError):
        run_interleaved({"t": lambda timer: None}, warmup=0, repeats=0)


def test_bootstrap_ratio_of_medians():
    peer = [2.0, 2.2, 1.8, 2.1, 1.9, 2.0, 2.05, 1.95, 2.0, 2.0]
    ours = [1.0] * 10
    interval = bootstrap_ratio_of_medians(peer, ours, resamples=500, seed=3)
    assert interval.estimate == pytest.approx(2.0)
    assert 1.8 <= interval.low <= interval.estimate <= interval.high <= 2.2
    again = bootstrap_ratio_of_medians(peer, ours, resamples=500, seed=3)
    assert again == interval  # seeded: reproducible
    constant = bootstrap_ratio_of_medians([3.0] * 10, [1.5] * 10, resamples=50)
    assert (constant.low, constant.estimate, constant.high) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        bootstrap_ratio_of_medians([1.0, 2.0], [1.0], paired=True)
    unpaired = bootstrap_ratio_of_medians([1.0, 2.0, 3.0], [1.0], paired=False, resamples=50)
    assert unpaired.estimate == 2.0


# ------------------------------------------------------------------------ environment
def test_environment_is_captured():
    env = capture_environment(torch.device("cpu"), "fp32")
    assert env["device"] == "cpu"
    assert env["cpu_model"] == cpu_model() and env["cpu_model"]
    assert env["device_name"] == env["cpu_model"]
    assert env["torch_version"] == torch.__version__
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["dtype"] == "fp32"
    assert env["gpu_name"] is None


def test_datasheet_peaks():
    assert datasheet_peak_flops("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4e12)
    assert datasheet_peak_flops("NVIDIA A100-SXM4-40GB", "bf16") == pytest.approx(312e12)
    assert datasheet_peak_flops("Some Future GPU", "bf16") is None
    assert datasheet_peak_flops(None, "fp32") is None


def test_matmul_rate_is_positive(one_thread):
    assert matmul_rate(torch.device("cpu"), "fp32", size=256, repeats=2) > 0


# ------------------------------------------------------------------------ what is timed
def test_train_step_times_every_phase(one_thread):
    config = make_config("tiny", "cross-attn")
    torch.manual_seed(0)
    model = DiffMAViL(config)
    audio, video = random_inputs(config, 2, torch.device("cpu"))
    step = TimedTrainStep(model, audio, video, (0.8, 0.9))
    before = [p.detach().clone() for p in model.parameters()]
    samples = run_interleaved({"step": step}, warmup=1, repeats=2)["step"]
    assert set(samples) == {"forward", "backward", "optimizer", "step"}
    assert all(len(v) == 2 for v in samples.values())
    for i in range(2):  # the whole step contains its phases
        assert samples["step"][i] >= samples["forward"][i] + samples["backward"][i]
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert all(changed)  # the optimizer ran on every parameter
    assert all(p.grad is None for p in model.parameters())  # zero_grad(set_to_none)


def test_step_ops_are_counted_per_phase_and_views_count():
    from bench.timing.dispatch import count_step_ops

    a, b = torch.ones(3, 3), torch.ones(3, 3)

    def run(region):
        a.add(1)  # outside every phase: "other"
        with region("forward"):
            torch.mm(a, b.t())  # a view and a matmul: 2 calls
        with region("backward"):
            a.mul(2).sum()  # 2 calls
            with region("optimizer"):  # regions nest: the inner one counts
                a.neg()

    assert count_step_ops(run) == {
        "other": 1, "forward": 2, "backward": 2, "optimizer": 1, "step": 6
    }  # fmt: skip


@pytest.mark.parametrize("variant", ["mavil", "cross-attn"])
def test_components_alone_see_real_inputs_and_fill_grads(one_thread, variant):
    config = make_config("tiny", variant)
    model = DiffMAViL(config)
    audio, video = random_inputs(config, 2, torch.device("cpu"))
    calls = capture_component_calls(model, audio, video, (0.8, 0.9))
    assert set(calls) == set(TIMED_COMPONENTS)
    # encoders get data (no gradient); fusion and decoders get latents that need one
    assert not any(a.requires_grad for a in calls["audio_encoder"].args if torch.is_tensor(a))
    assert all(a.requires_grad for a in calls["fusion"].args)
    assert calls["video_decoder"].args[0].requires_grad
    for name in TIMED_COMPONENTS:
        module = getattr(model, name)
        samples = run_interleaved({name: ComponentPass(module, calls[name])}, warmup=0, repeats=1)[
            name
        ]
        assert set(samples) == {"forward", "backward"}
        assert all(p.grad is not None for p in module.parameters())


# ------------------------------------------------------------------------ CLI
def test_time_cli_json_rows_carry_environment_and_savings(one_thread, tmp_path):
    out = tmp_path / "time.json"
    args = ["time", *FAST, "--repeats", "2", "--warmup", "1", "--variant", "mavil"]
    result = runner.invoke(app, [*args, "--variant", "cross-attn", "-f", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert json.loads(out.read_text()) == payload
    rows = payload["rows"]
    assert payload["environment"]["torch_version"] == torch.__version__
    assert set(payload["configs"]) == {"mavil", "cross-attn"}
    for row in rows:
        for key in (
            "device",
            "device_name",
            "cpu_model",
            "torch_version",
            "torch_threads",
            "dtype",
            "preset",
            "batch_size",
            "mask_ratio",
            "matmul_gflops_per_s",
        ):
            assert key in row
        assert row["torch_threads"] == 1
    kinds = {row["kind"] for row in rows}
    assert kinds == {"step", "component", "components_sum", "saving"}
    step = [r for r in rows if r["kind"] == "step" and r["variant"] == "cross-attn"]
    assert [r["phase"] for r in step] == ["forward", "backward", "optimizer", "step"]
    whole = step[-1]
    assert whole["repeats"] == 2 and whole["samples_per_s"] > 0
    assert whole["q1_ms"] <= whole["median_ms"] <= whole["q3_ms"]
    assert whole["utilisation"] > 0 and whole["flops"] > 0
    for variant in ("mavil", "cross-attn"):  # ATen calls per phase, counted before timing
        ops = {
            r["phase"]: r["aten_ops"]
            for r in rows
            if r["kind"] == "step" and r["variant"] == variant
        }
        assert all(isinstance(n, int) and n > 0 for n in ops.values()), ops
        phases = ops["forward"] + ops["backward"] + ops["optimizer"]
        assert phases <= ops["step"] <= phases + 2  # + the sample ids outside the phases
    components = {r["component"] for r in rows if r["kind"] == "component"}
    assert components == set(TIMED_COMPONENTS)
    saving = {r["component"]: r for r in rows if r["kind"] == "saving"}
    assert saving["audio_encoder"]["flop_saving"] == 0.0
    assert saving["audio_encoder"]["time_per_flop_saving"] is None
    assert saving["video_decoder"]["time_per_flop_saving"] is not None


def test_time_cli_peer_ratio_with_interval(one_thread):
    result = runner.invoke(
        app,
        [
            "time",
            *FAST,
            "--repeats",
            "10",
            "--warmup",
            "1",
            "--peer",
            "--no-components",
            "-f",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    ratios = [r for r in json.loads(result.stdout)["rows"] if r["kind"] == "peer_ratio"]
    assert [r["phase"] for r in ratios] == ["forward", "backward", "step"]
    for r in ratios:
        assert r["ci_low"] <= r["speed_ratio"] <= r["ci_high"] and r["repeats"] == 10


def test_time_cli_table_and_csv(one_thread):
    base = ["time", *FAST, "--repeats", "1", "--warmup", "0", "--no-components"]
    table = runner.invoke(app, base)
    assert table.exit_code == 0, table.output
    assert "ours" in table.stdout and "util" in table.stdout
    csv = runner.invoke(app, [*base, "-f", "csv"])
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0].startswith("kind,variant")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dtype", "fp16"], "--dtype': 'fp16' is not one of 'fp32', 'bf16'"),
        (["--device", "tpu"], "--device 'tpu': allowed values are cpu, cuda, cuda:N"),
        (["--peer", "--repeats", "5"], "comparison needs at least 10"),
        (
            ["--batch-size", "0"],
            "'--batch-size' / '-b': Input should be greater than or equal to 1",
        ),
        (["--variant", "crossattn"], "'crossattn' is not one of 'mavil', 'diff-self'"),
        (["--mask-ratio", "0.8,1.2"], "video mask ratio 1.2"),
    ],
)
def test_time_cli_bad_input_exits_2(args, message):
    result = runner.invoke(app, ["time", "--preset", "tiny", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
@pytest.mark.parametrize("command", ["time", "profile"])
def test_cuda_without_gpu_exits_2(command):
    result = runner.invoke(app, [command, "--preset", "tiny", "--device", "cuda"])
    assert result.exit_code == 2
    assert result.output.startswith("error: --device cuda: no CUDA device is available")


# ------------------------------------------------------------------------ GPU
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_time_cli_on_cuda(dtype):
    result = runner.invoke(
        app,
        [
            "time",
            "--preset",
            "tiny",
            "--device",
            "cuda",
            "--dtype",
            dtype,
            "--repeats",
            "10",
            "--warmup",
            "2",
            "--peer",
            "-f",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    step = next(r for r in rows if r["kind"] == "step" and r["phase"] == "step")
    assert step["gpu_name"] == torch.cuda.get_device_name()
    assert step["peak_memory_kind"] == "cuda_max_allocated" and step["peak_memory_mb"] > 0
    assert "tf32_matmul" in step


@pytest.mark.gpu
@gpu
def test_compiled_step_on_cuda_with_changing_shapes():
    config = make_config("tiny", "cross-attn")
    model = DiffMAViL(config).cuda()
    audio, video = random_inputs(config, 2, torch.device("cuda"))
    for ratios in ((0.8, 0.9), (0.85, 0.92), (0.9, 0.95)):  # a curriculum's shapes
        step = TimedTrainStep(model, audio, video, ratios, dtype="bf16", compile=True)
        samples = run_interleaved({"s": step}, warmup=1, repeats=1, device="cuda")["s"]
        assert samples["step"][0] > 0
