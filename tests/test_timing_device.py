"""What a timing runs on, without a GPU: ``--device cuda:N`` timed on that device (events on
its stream, its synchronisation, its matmul rate), the GPU datasheet table matched by
name tokens (most specific entry first, an unknown GPU said so), and TF32 set on purpose
and read through either of torch's APIs. CUDA itself is patched: the calls are checked,
not their effect (the ``gpu`` tests check the effect)."""

from __future__ import annotations

import contextlib
from typing import ClassVar

import pytest
import torch

from bench.timing import device as timing_device
from bench.timing import harness
from bench.timing.device import datasheet_peak_flops, mfu_peak, tf32_settings
from bench.timing.harness import RegionTimer


# ------------------------------------------------------------------ --device cuda:N
class _Stream:
    def __init__(self, device) -> None:
        self.device = torch.device(device)


class _Event:
    recorded: ClassVar[list[_Stream | None]] = []

    def __init__(self, enable_timing: bool = False) -> None:
        assert enable_timing

    def record(self, stream: _Stream | None = None) -> None:
        _Event.recorded.append(stream)

    def elapsed_time(self, _other: _Event) -> float:
        return 2.0  # ms


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda's events, streams and synchronisation, recorded instead of run."""
    synchronized: list = []
    _Event.recorded = []
    monkeypatch.setattr(torch.cuda, "Event", _Event)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: _Stream(device))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synchronized.append(device))
    return synchronized


def test_events_are_recorded_on_the_given_devices_stream(fake_cuda):
    timer = RegionTimer("cuda:1")
    with timer.region("step"):
        pass
    assert [s.device if s else None for s in _Event.recorded] == [torch.device("cuda:1")] * 2
    assert timer.collect() == {"step": [0.002]}
    assert fake_cuda and all(torch.device(d) == torch.device("cuda:1") for d in fake_cuda)


def test_the_interleaved_rounds_synchronise_the_given_device(fake_cuda):
    def task(timer: RegionTimer) -> None:
        with timer.region("call"):
            pass

    samples = harness.run_interleaved({"t": task}, warmup=1, repeats=2, device="cuda:1")
    assert samples == {"t": {"call": [0.002, 0.002]}}
    assert fake_cuda and {torch.device(d) for d in fake_cuda} == {torch.device("cuda:1")}


def test_the_matmul_rate_is_measured_on_the_given_device(monkeypatch):
    seen: list = []

    def measure(function, *, warmup, repeats, device):
        seen.append(device)
        return [1.0]

    monkeypatch.setattr(harness, "measure", measure)
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *args, **kwargs: self)  # no GPU here
    rate = timing_device.matmul_rate(torch.device("cuda:1"), "fp32", size=8, repeats=1)
    assert rate == 2.0 * 8**3
    assert [torch.device(d) for d in seen] == [torch.device("cuda:1")]


def test_work_runs_under_the_given_devices_context(monkeypatch):
    entered: list = []

    @contextlib.contextmanager
    def device_context(device):
        entered.append(device)
        yield

    monkeypatch.setattr(torch.cuda, "device", device_context)
    with timing_device.on_device(torch.device("cuda:1")):
        pass
    with timing_device.on_device(torch.device("cpu")):
        pass
    assert entered == [torch.device("cuda:1")]  # the CPU has no device context


# ------------------------------------------------------------------ the datasheet table
# Names as torch.cuda.get_device_name() gives them, with the dense (no sparsity) bf16 and
# fp32 (no TF32) peaks in TFLOP/s of NVIDIA's datasheets; None: no such peak.
REAL_NAMES = [
    ("NVIDIA H100 80GB HBM3", 989.4, 66.9),
    ("NVIDIA H100", 989.4, 66.9),
    ("NVIDIA H100 PCIe", 756.0, 51.2),
    ("NVIDIA H100 NVL", 835.5, 60.0),
    ("NVIDIA H200", 989.4, 66.9),
    ("NVIDIA H200 NVL", 835.5, 60.0),
    ("NVIDIA H800", 989.4, 66.9),
    ("NVIDIA H800 PCIe", 756.0, 51.2),
    ("NVIDIA GH200 480GB", 989.4, 66.9),
    ("NVIDIA B200", 2250.0, 75.0),
    ("NVIDIA A100-SXM4-80GB", 312.0, 19.5),
    ("NVIDIA A100-SXM4-40GB", 312.0, 19.5),
    ("NVIDIA A100-PCIE-40GB", 312.0, 19.5),
    ("NVIDIA A100 80GB PCIe", 312.0, 19.5),
    ("NVIDIA A800-SXM4-80GB", 312.0, 19.5),
    ("NVIDIA A40", 149.7, 37.4),
    ("NVIDIA A10", 125.0, 31.2),
    ("NVIDIA L4", 121.0, 30.3),
    ("NVIDIA L40", 181.05, 90.5),
    ("NVIDIA L40S", 362.05, 91.6),
    ("NVIDIA GeForce RTX 4090", 165.2, 82.6),
    ("Tesla V100-SXM2-16GB", None, 15.7),
    ("Tesla V100-SXM2-32GB", None, 15.7),
    ("Tesla V100-PCIE-32GB", None, 14.0),
    ("Tesla T4", None, 8.1),
]
UNKNOWN_NAMES = [
    "NVIDIA A10G",
    "NVIDIA GeForce RTX 3090",
    "NVIDIA RTX A6000",
    "AMD Instinct MI300X",
]


def _torch_default_tf32() -> None:
    """torch's defaults: TF32 matmuls off, cuDNN TF32 on; through the legacy API first (a
    legacy read raises when the legacy flag and the new ``fp32_precision`` disagree)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cuda.matmul.fp32_precision = "none"
    torch.backends.cudnn.allow_tf32 = True


@pytest.fixture
def tf32_default():
    """torch's TF32 defaults for the test, whatever ran before, and again after it."""
    _torch_default_tf32()
    yield
    _torch_default_tf32()


@pytest.mark.parametrize(("name", "bf16", "fp32"), REAL_NAMES)
def test_real_device_names_get_their_own_datasheet_peaks(tf32_default, name, bf16, fp32):
    expected_bf16 = None if bf16 is None else pytest.approx(bf16 * 1e12)
    assert datasheet_peak_flops(name, "bf16") == expected_bf16
    assert datasheet_peak_flops(name, "fp32") == pytest.approx(fp32 * 1e12)


def test_a_shorter_name_never_captures_a_longer_one(tf32_default):
    """ "L4" is not "L40", "H100" is not "H100 NVL", "A10" is not "A100"."""
    assert datasheet_peak_flops("NVIDIA L40", "bf16") != datasheet_peak_flops("NVIDIA L4", "bf16")
    assert datasheet_peak_flops("NVIDIA H100 NVL", "bf16") != datasheet_peak_flops(
        "NVIDIA H100 80GB HBM3", "bf16"
    )
    assert datasheet_peak_flops("NVIDIA A100-PCIE-40GB", "bf16") == pytest.approx(312e12)


@pytest.mark.parametrize("name", UNKNOWN_NAMES)
def test_an_unknown_gpu_says_so(name):
    assert datasheet_peak_flops(name, "bf16") is None
    peak, label = mfu_peak(name, "bf16")
    assert peak is None and label == f"unknown device ({name})"


def test_the_mfu_label_names_the_entry_or_why_there_is_none(tf32_default):
    assert mfu_peak("NVIDIA H100 NVL", "bf16") == (pytest.approx(835.5e12), "H100 NVL bf16")
    assert mfu_peak("Tesla T4", "bf16") == (None, "no bf16 peak (T4)")
    assert mfu_peak(None, "bf16") == (None, "not a GPU")


# ------------------------------------------------------------------ TF32
def test_tf32_is_read_after_the_new_api_set_it(tf32_default):
    """torch's legacy ``allow_tf32`` raises once ``fp32_precision`` was set; the settings,
    the peak and the environment read either."""
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    settings = tf32_settings()
    assert settings["tf32_matmul"] is True and settings["float32_matmul_precision"] == "high"
    assert datasheet_peak_flops("NVIDIA A100-SXM4-80GB", "fp32") == pytest.approx(156e12)
    torch.backends.cuda.matmul.fp32_precision = "ieee"
    assert tf32_settings()["tf32_matmul"] is False
    assert datasheet_peak_flops("NVIDIA A100-SXM4-80GB", "fp32") == pytest.approx(19.5e12)


def test_tf32_is_read_after_the_legacy_api_set_it(tf32_default):
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = False
    assert tf32_settings() == {
        "tf32_matmul": True, "tf32_cudnn": False, "float32_matmul_precision": "high"
    }  # fmt: skip


def test_the_environment_reads_tf32_whichever_api_set_it(tf32_default, monkeypatch):
    """On a (patched) GPU, after the new API set TF32, the environment block is captured
    and records it."""
    import diffmavil.environment as env

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA L40S")
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    captured = timing_device.capture_environment(torch.device("cuda"), "fp32")
    assert captured["gpu_name"] == "NVIDIA L40S" and captured["device"] == "cuda"
    assert captured["tf32_matmul"] is True and captured["float32_matmul_precision"] == "high"
    assert env  # the block is diffmavil.environment's


@pytest.mark.parametrize("enabled", [True, False])
def test_tf32_is_set_on_purpose_on_cuda_only(tf32_default, enabled):
    timing_device.apply_tf32(torch.device("cuda:0"), enabled)
    assert tf32_settings()["tf32_matmul"] is enabled
    assert tf32_settings()["tf32_cudnn"] is enabled
    assert torch.backends.cuda.matmul.allow_tf32 is enabled  # pretrain's reader agrees
    timing_device.apply_tf32(torch.device("cpu"), not enabled)  # nothing to set on a CPU
    assert tf32_settings()["tf32_matmul"] is enabled


# ------------------------------------------------------------------ peak memory
def test_a_peak_that_cannot_be_reset_says_it_is_the_processs(monkeypatch):
    """Where /proc/self/clear_refs refuses the reset, the CPU peak is the process's since
    it started, and its kind says so."""

    class Refusing:
        def write_text(self, _text: str) -> None:
            raise PermissionError("clear_refs: operation not permitted")

    meter = timing_device.PeakMemory(torch.device("cpu"))
    meter.resettable = True
    monkeypatch.setattr(timing_device, "_CLEAR_REFS", Refusing())
    meter.reset()
    reading = meter.read()
    assert not meter.resettable and reading.kind == "process_max_rss"
    assert reading.allocated_mb > 0 and reading.reserved_mb is None


def test_pretrains_environment_block_reads_tf32_set_by_the_new_api(tf32_default, monkeypatch):
    """``diffmavil.environment.capture`` (what pretrain and every result record) no longer
    reads the legacy flag, which raises once ``fp32_precision`` was set."""
    from diffmavil.environment import capture

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    block = capture("cuda")
    assert block.tf32_matmul is True and block.float32_matmul_precision == "high"
