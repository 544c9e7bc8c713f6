"""Where FLOPs are counted: three counters that must agree exactly, per component.

- ``count_torch``: ``torch.utils.flop_counter.FlopCounterMode`` with formulas registered for
  the CPU attention ops, every attention call audited, backward per component in isolation.
- ``count_fvcore``: fvcore's TorchScript-traced counter with an explicit matmul-only handle
  table and an attention handle (MACs x 2).
- the closed form, ``diffmavil.flops.model_flops`` (no torch).

``count_flops`` runs the chosen ones and raises ``FlopCountError`` on any difference;
``run_flops`` / ``run_saving`` integrate the closed form over a recipe's step plan;
``sensitivity`` shows how the saving vs MAViL moves with our own assumptions.
Heavy imports (torch, fvcore) happen only when a counter runs.
"""

from bench.flops.breakdown import FlopReport, check_agreement, count_flops, resolve_counters
from bench.flops.common import (
    COUNTER_CHOICES,
    COUNTERS,
    CounterResult,
    FlopCountError,
    expected_attention_calls,
)
from bench.flops.run import (
    PAPER_SAVING,
    baseline_config,
    baseline_recipe,
    run_flops,
    run_saving,
    sensitivity,
)

__all__ = [
    "COUNTERS",
    "COUNTER_CHOICES",
    "PAPER_SAVING",
    "CounterResult",
    "FlopCountError",
    "FlopReport",
    "baseline_config",
    "baseline_recipe",
    "check_agreement",
    "count_flops",
    "expected_attention_calls",
    "resolve_counters",
    "run_flops",
    "run_saving",
    "sensitivity",
]
