"""Planning an ablation grid's runs, as pure functions of configs: the planned steps and
FLOPs of a config, the compute-matched budget solver (``solve_matched_budget``), run ids,
and the differences of a row from the base."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from diffmavil.config import COMPONENTS, ModelConfig
from diffmavil.training.config import FinetuneConfig, PretrainConfig, config_hash


@dataclass(frozen=True)
class Plan:
    """Planned pre-training of a config: steps, samples and model FLOPs (fwd + bwd)."""

    steps: int
    samples: int
    total_flops: int
    flops_by_component: dict[str, int]


@lru_cache(maxsize=4096)
def _plan(model: ModelConfig, masking: Any, batch: Any, budget: int) -> Plan:
    # cached by what determines the plan (a config's seed and execution settings do not)
    from diffmavil.flops import model_flops
    from diffmavil.schedules import plan_run

    steps = plan_run(model, masking, batch, budget)
    by_component = dict.fromkeys(COMPONENTS, 0)
    for step in steps:
        breakdown = model_flops(model, step.mask_ratio, step.batch_size)
        for name in COMPONENTS:
            by_component[name] += breakdown.component_total(name)
    return Plan(
        len(steps), sum(s.batch_size for s in steps), sum(by_component.values()), by_component
    )


def plan_config(config: PretrainConfig, budget: int | None = None) -> Plan:
    """The planned run of ``config`` (``plan_run`` + ``model_flops``)."""
    return _plan(config.model, config.masking, config.batch, budget or config.budget_samples)


def solve_matched_budget(config: PretrainConfig, target_flops: int) -> int:
    """The budget (samples) whose planned FLOPs come closest to ``target_flops``.

    Planned FLOPs grow with the budget (more samples, never fewer FLOPs); binary search for
    the largest budget at or under the target, then take whichever of it and the next
    budget lies closer.
    """
    low, high = 1, max(2, config.budget_samples)
    while plan_config(config, high).total_flops < target_flops:
        high *= 2
    while low < high:  # largest budget with flops <= target (or 1)
        mid = (low + high + 1) // 2
        if plan_config(config, mid).total_flops <= target_flops:
            low = mid
        else:
            high = mid - 1
    candidates = [low, low + 1]
    return min(candidates, key=lambda b: abs(plan_config(config, b).total_flops - target_flops))


def row_run_id(
    config: PretrainConfig,
    probe: FinetuneConfig | None,
    flops_only: bool,
    *,
    curve: FinetuneConfig | None = None,
    finetune: FinetuneConfig | None = None,
) -> str:
    """Hash of the resolved pre-training config plus the probe config, and the curve's
    probe and the fine-tune where the run has them (a run without either hashes as it did
    before they existed)."""
    payload: dict[str, Any] = {"pretrain": config.model_dump(mode="json")}
    if flops_only:
        payload["flops_only"] = True
    else:
        payload["probe"] = None if probe is None else probe.identity()
    if curve is not None:
        payload["curve"] = curve.identity()
    if finetune is not None:
        payload["finetune"] = finetune.identity()
    return config_hash(payload)


def control_run_id(
    init: str,
    config: PretrainConfig,
    probe: FinetuneConfig,
    finetune: FinetuneConfig | None = None,
) -> str:
    """Hash of a control probe: its init, what of the model it uses (the whole model for
    random init, the audio input for fbank), the probe config and, where the control is
    fine-tuned too, the fine-tune."""
    model = config.model
    what = (
        model.model_dump(mode="json")
        if init == "random"
        else {"audio": model.audio.model_dump(mode="json")}
    )
    payload: dict[str, Any] = {"control": init, "model": what, "probe": probe.identity()}
    if finetune is not None:
        payload["finetune"] = finetune.identity()
    return config_hash(payload)


def format_value(value: Any) -> str:
    """A grid value as rows and labels show it (booleans lower case, as in YAML)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe_differences(differences: dict[str, Any]) -> str:
    """``key=value, ...`` of a row's differences from the base, or ``(base)``."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in differences.items()) or "(base)"


def differences(base: PretrainConfig, config: PretrainConfig) -> dict[str, Any]:
    """The dotted keys where ``config`` differs from ``base`` (the seed aside)."""
    from diffmavil.config import flatten

    before = flatten(base.model_dump(mode="json"))
    after = flatten(config.model_dump(mode="json"))
    return {
        key: value
        for key, value in after.items()
        if key != "seed" and before.get(key, object()) != value
    }
