"""Planning an ablation grid: the planned steps and FLOPs of a config, the compute-matched
budget solver (``solve_matches``: ``budget.match_flops_of``), run ids, and the dry-run
table."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffmavil.config import COMPONENTS, ModelConfig
from diffmavil.training.config import FinetuneConfig, PretrainConfig, config_hash

if TYPE_CHECKING:
    from bench.ablate.grid import Grid, GridRow


@dataclass(frozen=True)
class Plan:
    """Planned pre-training of a config: steps, samples and model FLOPs (fwd + bwd)."""

    steps: int
    samples: int
    total_flops: int
    flops_by_component: dict[str, int]


@lru_cache(maxsize=4096)
def _plan(model: ModelConfig, masking: Any, batch: Any, budget: int) -> Plan:
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


def row_run_id(config: PretrainConfig, probe: FinetuneConfig | None, flops_only: bool) -> str:
    """Hash of the resolved pre-training config plus the probe config."""
    payload: dict[str, Any] = {"pretrain": config.model_dump(mode="json")}
    if flops_only:
        payload["flops_only"] = True
    else:
        payload["probe"] = None if probe is None else probe.identity()
    return config_hash(payload)


def control_run_id(init: str, config: PretrainConfig, probe: FinetuneConfig) -> str:
    model = config.model
    what = (
        model.model_dump(mode="json")
        if init == "random"
        else {"audio": model.audio.model_dump(mode="json")}
    )
    return config_hash({"control": init, "model": what, "probe": probe.identity()})


def format_value(value: Any) -> str:
    """A grid value as rows and labels show it (booleans lower case, as in YAML)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe_differences(differences: dict[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in differences.items()) or "(base)"


def dry_run_rows(grid: Grid) -> list[dict[str, Any]]:
    """One row per grid row: its resolved differences, planned steps and FLOPs, run ids."""
    baseline_flops = plan_config(grid.baseline.config).total_flops
    out = []
    for row in grid.rows:
        plan = plan_config(row.config)
        ids = [
            row_run_id(row.at_seed(s), grid.probe_at_seed(s), grid.run.flops_only)
            for s in grid.seeds_of(row)
        ]
        out.append(
            {
                "row": row.name,
                "baseline": row.baseline,
                "differences": describe_differences(row.differences),
                "budget_samples": row.config.budget_samples,
                "planned_steps": plan.steps,
                "planned_flops": plan.total_flops,
                "delta_flops_pct": 100.0 * (plan.total_flops - baseline_flops) / baseline_flops,
                "match_flops_of": row.match_flops_of or "",
                "seeds": ",".join(str(s) for s in grid.seeds_of(row)),
                "run_ids": ",".join(ids),
            }
        )
    return out


def solve_matches(rows: list[GridRow], path: Path) -> None:
    """Give every row with ``budget.match_flops_of`` the budget at which its planned FLOPs
    equal its target row's (``solve_matched_budget``); a bad target is a ``GridError``."""
    from bench.ablate.grid import GridError

    by_name = {row.name: row for row in rows}
    for row in rows:
        if row.match_flops_of is None:
            continue
        where = f"{path}: row {row.name!r}: key 'budget.match_flops_of'"
        target = by_name.get(row.match_flops_of)
        if target is None:
            hint = difflib.get_close_matches(row.match_flops_of, list(by_name), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise GridError(
                f"{where}: unknown row {row.match_flops_of!r}{suggestion}; rows: "
                f"{', '.join(by_name)}"
            )
        if target is row:
            raise GridError(f"{where}: a row cannot match its own FLOPs")
        if target.match_flops_of is not None:
            raise GridError(
                f"{where}: row {target.name!r} is itself FLOP-matched; match a row with a budget"
            )
        budget = solve_matched_budget(row.config, plan_config(target.config).total_flops)
        row.config = row.config.model_copy(update={"budget_samples": budget})
        row.differences["budget_samples"] = budget


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


def select_rows(grid: Grid, names: list[str]) -> Grid:
    """The grid restricted to ``names`` (budgets stay solved against the whole grid; the
    baseline row is kept, for the deltas)."""
    from bench.ablate.grid import Grid, GridError

    known = [row.name for row in grid.rows]
    for name in names:
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise GridError(
                f"{grid.path}: --rows: unknown row {name!r}{suggestion}; rows: {', '.join(known)}"
            )
    keep = set(names) | {grid.baseline.name}
    return Grid(
        grid.path,
        grid.name,
        grid.description,
        grid.base,
        [row for row in grid.rows if row.name in keep],
        grid.seeds,
        grid.run,
        grid.probe,
        grid.statistics,
    )
