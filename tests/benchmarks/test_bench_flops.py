"""Benchmarks of `diffbench flops` (pytest-benchmark; excluded from the default run).

Run with ``python -m pytest tests/benchmarks -m benchmark_suite``. The figure quoted in
docs/flops.md is ``test_base_breakdown_four_variants``: FlopCounterMode on ``meta``
(forward, isolated backward, global checks) plus the closed form, for all four variants at
base size, models built once beforehand.
"""

from __future__ import annotations

import pytest

from bench.flops import count_flops, run_saving
from bench.flops.common import cached_model
from diffmavil import VARIANTS, make_config
from diffmavil.schedules import BatchSchedule, MaskingSchedule

pytestmark = pytest.mark.benchmark_suite

CONFIGS = [make_config("base", variant) for variant in VARIANTS]


@pytest.fixture(scope="module", autouse=True)
def _built_models():
    for config in CONFIGS:
        cached_model(config, "meta")


def _breakdown(counter: str) -> list:
    return [count_flops(c, (0.8, 0.9), 1, counter=counter, device="meta") for c in CONFIGS]


def test_base_breakdown_four_variants(benchmark):
    """torch (FlopCounterMode, forward + isolated backward) checked against the closed form."""
    reports = benchmark.pedantic(_breakdown, args=("torch",), rounds=3, iterations=1)
    assert len(reports) == 4


def test_base_breakdown_four_variants_all_counters(benchmark):
    """torch + fvcore + closed form, all checked to agree exactly."""
    reports = benchmark.pedantic(_breakdown, args=("all",), rounds=2, iterations=1)
    assert all(r.counter_label == "torch=fvcore=analytic" for r in reports)


def test_base_breakdown_closed_form(benchmark):
    reports = benchmark(_breakdown, "analytic")
    assert len(reports) == 4


def test_whole_run_saving_two_million_samples(benchmark):
    from bench.flops import run as run_module

    config = make_config("base", "cross-attn")
    masking, batch = MaskingSchedule(kind="curriculum"), BatchSchedule(kind="adaptive")

    def fresh():
        run_module._run_flops.cache_clear()
        return run_saving(config, masking, batch, 2_000_000)

    result = benchmark.pedantic(fresh, rounds=3, iterations=1)
    assert 0.2 < result["saving"] < 0.25
