"""Train step (forward, backward, AdamW) per variant at tiny and small, ours and the
torch.nn peer; FLOP counting at base. Measured, never asserted."""

from __future__ import annotations

import pytest
import torch

from bench.timing.harness import RegionTimer
from bench.timing.peer import peer_from
from bench.timing.tasks import TimedTrainStep
from diffmavil import VARIANTS, DiffMAViL, make_config
from diffmavil.flops import model_flops
from diffmavil.inputs import random_inputs

pytestmark = pytest.mark.benchmark_suite

BATCH = {"tiny": 8, "small": 8}
ROUNDS = {"tiny": 10, "small": 3}


@pytest.mark.parametrize("implementation", ["ours", "peer"])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_train_step(benchmark, environment, preset, variant, implementation):
    config = make_config(preset, variant)
    torch.manual_seed(0)
    model = DiffMAViL(config)
    if implementation == "peer":
        model = peer_from(model)
    audio, video = random_inputs(config, BATCH[preset], torch.device("cpu"))
    step = TimedTrainStep(model, audio, video, (0.8, 0.9))
    timer = RegionTimer("cpu", enabled=False)
    flops = model_flops(config, (0.8, 0.9), BATCH[preset]).total
    benchmark.extra_info.update(
        {**environment, "preset": preset, "variant": variant, "implementation": implementation,
         "batch_size": BATCH[preset], "model_flops_fwd_bwd": flops}
    )  # fmt: skip
    benchmark.pedantic(lambda: step(timer), rounds=ROUNDS[preset], iterations=1, warmup_rounds=1)
    benchmark.extra_info["achieved_gflops_per_s"] = flops / benchmark.stats.stats.median / 1e9


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_flop_counting_at_base(benchmark, variant):
    """FlopCounterMode over a forward + backward at base size on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    config = make_config("base", variant)
    with torch.device("meta"):
        model = DiffMAViL(config)
    audio, video = (x.to("meta") for x in random_inputs(config, 1, torch.device("cpu")))

    def count() -> int:
        with FlopCounterMode(display=False) as counter:
            model(audio, video, (0.8, 0.9)).loss.backward()
        return counter.get_total_flops()

    counted = benchmark.pedantic(count, rounds=3, iterations=1)
    benchmark.extra_info["flops"] = counted
    benchmark.extra_info["closed_form"] = model_flops(config, (0.8, 0.9), 1).total
