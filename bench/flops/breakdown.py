"""Per-component FLOP breakdown from one or more counters, with exact agreement checks."""

from __future__ import annotations

from dataclasses import dataclass

from bench.flops.common import COUNTER_CHOICES, COUNTERS, CounterResult, FlopCountError
from diffmavil.config import COMPONENTS, ModelConfig
from diffmavil.flops import FlopBreakdown, model_flops


@dataclass(frozen=True)
class FlopReport:
    """The closed form and every counter that ran, already checked to agree exactly."""

    config: ModelConfig
    mask_ratio: tuple[float, float]
    batch_size: int
    counters: tuple[str, ...]
    analytic: FlopBreakdown
    results: dict[str, CounterResult]
    params: dict[str, int]

    @property
    def counter_label(self) -> str:
        """Which counters produced (and agree on) the numbers: e.g. 'torch=fvcore=analytic'
        (the closed form is always computed and every counter is checked against it)."""
        names = [*self.counters, *(() if "analytic" in self.counters else ("analytic",))]
        return "=".join(names)

    def hardware_extra(self, component: str) -> int:
        """Fused-attention recompute extra of one component (0.5x its attention forward)."""
        return self.analytic.attention.get(component, 0) // 2


def resolve_counters(counter: str) -> tuple[str, ...]:
    if counter not in COUNTER_CHOICES:
        from bench.errors import BadInput

        raise BadInput(f"unknown counter {counter!r}; allowed: {', '.join(COUNTER_CHOICES)}")
    return COUNTERS if counter == "all" else (counter,)


def check_agreement(analytic: FlopBreakdown, results: dict[str, CounterResult]) -> None:
    """Raise ``FlopCountError`` naming every component where a counter differs from the
    closed form (forward, and backward where the counter counts it) or where a counter's
    components do not sum to its own global total."""
    problems: list[str] = []
    for name, result in results.items():
        if result.total_forward != result.global_forward:
            problems.append(
                f"{name}: components sum to {result.total_forward:,} forward, "
                f"global {result.global_forward:,}"
            )
        passes = [("forward", result.forward, analytic.forward)]
        if result.backward is not None:
            passes.append(("backward", result.backward, analytic.backward))
            if result.total_backward != result.global_backward:
                problems.append(
                    f"{name}: components sum to {result.total_backward:,} backward, "
                    f"global {result.global_backward:,}"
                )
        for direction, counted, expected in passes:
            for component in COMPONENTS:
                if counted[component] != expected[component]:
                    delta = counted[component] - expected[component]
                    problems.append(
                        f"{component} {direction}: {name} {counted[component]:,} vs analytic "
                        f"{expected[component]:,} ({delta:+,})"
                    )
    if problems:
        raise FlopCountError("counters disagree: " + "; ".join(problems))


def count_flops(
    config: ModelConfig,
    mask_ratio: tuple[float, float],
    batch_size: int = 1,
    *,
    counter: str = "all",
    backward: bool = True,
    device: str = "meta",
) -> FlopReport:
    """Count with the chosen counters (``torch``, ``fvcore``, ``analytic`` or ``all``) and
    check them against the closed form: any difference raises ``FlopCountError``."""
    from bench.flops.common import cached_model
    from diffmavil.model import count_parameters_by_component

    counters = resolve_counters(counter)
    analytic = model_flops(config, mask_ratio, batch_size)
    results: dict[str, CounterResult] = {}
    if "torch" in counters:
        from bench.flops.torch_counter import count_torch

        results["torch"] = count_torch(
            config, mask_ratio, batch_size, device=device, backward=backward
        )
    if "fvcore" in counters:
        from bench.flops.fvcore_counter import count_fvcore

        results["fvcore"] = count_fvcore(config, mask_ratio, batch_size, device=device)
    check_agreement(analytic, results)
    params = count_parameters_by_component(cached_model(config, "meta"))
    return FlopReport(
        config=config,
        mask_ratio=(float(mask_ratio[0]), float(mask_ratio[1])),
        batch_size=batch_size,
        counters=counters,
        analytic=analytic,
        results=results,
        params=params,
    )
