"""Ablation grids: a grid file (``bench.ablate.grid_file.GridFile``) expanded into rows,
one resolved ``PretrainConfig`` each, with compute-matched budgets solved; row selection
and the dry-run table. Planning, budgets and run ids: ``bench.ablate.plan``.

A grid file (see docs/ablate.md, "The YAML format")::

    name: table2
    base: {preset: cpu, budget_samples: 96, batch: {batch_size: 16}}   # or base_config: x.yaml
    seeds: [0]
    run: {probe: {epochs: 50}, controls: [random, fbank]}
    rows:
      mavil: {variant: mavil, baseline: true}
      diffmavil: {variant: cross-attn, masking.kind: curriculum, batch.kind: adaptive}
      mavil-matched: {variant: mavil, budget.match_flops_of: diffmavil}
    grid:                      # optional cartesian product of dotted keys
      optimizer.base_lr: [1e-4, 2e-4]

Every problem is a ``GridError`` (a ``BadInput``: exit code 2 from the CLI) whose one-line
message names the file, the row and the key.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_core import ErrorDetails

from bench.ablate.grid_checks import check_curve_and_finetune, check_statistics
from bench.ablate.grid_file import (
    GridError,
    GridFile,
    RowSpec,
    describe_problem,
    read_base_overrides,
    read_grid_file,
)
from bench.ablate.plan import (
    describe_differences,
    differences,
    format_value,
    plan_config,
    row_run_id,
    solve_matched_budget,
)
from bench.requests import RunSpec, StatisticsSpec
from bench.requests.files import read_yaml
from diffmavil.config import (
    PRESETS,
    VARIANTS,
    ConfigError,
    Frozen,
    deep_merge,
    did_you_mean,
    dotted_to_nested,
    make_config,
)
from diffmavil.training.config import FinetuneConfig, PretrainConfig

__all__ = ["Grid", "GridError", "GridRow", "dry_run_rows", "load_grid", "select_rows"]


class GridRow(Frozen):
    """One row of the grid after expansion (one config per seed)."""

    name: str
    overrides: dict[str, Any]  # the row's own dotted keys (grid values included)
    config: PretrainConfig  # at the first seed
    baseline: bool = False
    description: str = ""
    match_flops_of: str | None = None
    differences: dict[str, Any] = Field(default_factory=dict)  # resolved, vs the base
    seed_count: int | None = None  # runs at the grid's first seed_count seeds (None: all)

    def at_seed(self, seed: int) -> PretrainConfig:
        """The row's config at ``seed``."""
        return self.config.model_copy(update={"seed": seed})


class Grid(Frozen):
    """A grid file, validated and expanded: its base, rows, seeds, run and statistics."""

    path: Path
    name: str
    description: str
    base: PretrainConfig
    rows: list[GridRow]
    seeds: list[int]
    run: RunSpec
    probe: FinetuneConfig | None
    finetune: FinetuneConfig | None = None  # run.finetune's fine-tune (its rows: run's)
    statistics: StatisticsSpec = Field(default_factory=StatisticsSpec)

    @property
    def baseline(self) -> GridRow:
        """The row deltas are against."""
        return next(row for row in self.rows if row.baseline)

    def seeds_of(self, row: GridRow) -> list[int]:
        """The seeds ``row`` runs at: the grid's first ``seeds`` (a row setting), or all."""
        return self.seeds if row.seed_count is None else self.seeds[: row.seed_count]

    def probe_at_seed(self, seed: int) -> FinetuneConfig | None:
        """The probe of the runs at ``seed`` (None: the grid has none)."""
        return None if self.probe is None else self.probe.model_copy(update={"seed": seed})

    def curve_probe_at_seed(self, seed: int, row: GridRow | None = None) -> FinetuneConfig | None:
        """The probe of a run's interior snapshots at ``seed`` (``run.curve``): the run's
        probe with the curve's probe seeds (None: no curve, also for a ``row`` that takes
        no snapshots: it is probed at its final snapshot only)."""
        probe, curve = self.probe_at_seed(seed), self.run.curve
        if probe is None or curve is None:
            return None
        if row is not None and row.config.snapshot_every is None:
            return None
        return probe.model_copy(update={"probe_seeds": curve.probe_seeds})

    def finetune_at_seed(self, row: str | None, seed: int) -> FinetuneConfig | None:
        """The fine-tune of ``row``'s run at ``seed`` (``row`` None: the random-init
        control's); None where ``run.finetune`` does not name the row."""
        spec = self.run.finetune
        if self.finetune is None or spec is None or (row is not None and row not in spec.rows):
            return None
        return self.finetune.model_copy(update={"seed": seed})

    def run_id(self, row: GridRow, seed: int) -> str:
        """The run id of ``row`` at ``seed``: its config, probe, curve and fine-tune."""
        return row_run_id(
            row.at_seed(seed),
            self.probe_at_seed(seed),
            self.run.flops_only,
            curve=self.curve_probe_at_seed(seed, row),
            finetune=self.finetune_at_seed(row.name, seed),
        )


# --------------------------------------------------------------------------------------
# Loading: validate the file, resolve the base, expand the rows, solve matched budgets
# --------------------------------------------------------------------------------------


def load_grid(path: str | Path, seeds: list[int] | None = None) -> Grid:
    """Read, validate and expand a grid file (``seeds``: the command line's, over the
    file's). Raises ``GridError`` on the first stage with a problem."""
    path = Path(path)
    document = read_yaml(path, "grid file", error=GridError, mapping=False)
    if seeds is not None and isinstance(document, dict):
        document = {**document, "seeds": seeds}
    spec = read_grid_file(path, document)
    base_overrides = {**_base_config_overrides(spec, path), **spec.base}
    base_nested = _nested(base_overrides, f"{path}: base")
    base = resolve_config(base_nested, f"{path}: base")
    if spec.run.probe is not None:
        _check_data(spec.run.probe.data, f"{path}: run", "run.probe.data")
    rows = [
        row.model_copy(update={"differences": differences(base, row.config)})
        for row in _expand_rows(spec, path, base_nested)
    ]
    rows = solve_matches(rows, path)
    configs = {row.name: row.config for row in rows}
    check_statistics(spec.statistics, spec.run, configs, path)
    compared = [
        name
        for c in spec.statistics.comparisons
        for name in (c.candidate, c.reference)
        if name in configs
    ]
    check_curve_and_finetune(spec.run, configs, path, compared)
    grid = Grid(
        path=path,
        name=spec.name or path.stem,
        description=spec.description or "",
        base=base,
        rows=rows,
        seeds=spec.seeds,
        run=spec.run,
        probe=spec.run.probe,
        finetune=None if spec.run.finetune is None else spec.run.finetune.config(spec.run.probe),
        statistics=spec.statistics,
    )
    return _compiled(grid) if spec.run.compile else grid


def _base_config_overrides(spec: GridFile, path: Path) -> dict[str, Any]:
    """The dotted keys of ``base_config`` (a YAML file, relative to the grid file)."""
    if spec.base_config is None:
        return {}
    base_file = (
        spec.base_config if spec.base_config.is_absolute() else path.parent / spec.base_config
    )
    if not base_file.exists():
        raise GridError(f"{path}: key 'base_config': {base_file} not found")
    return read_base_overrides(base_file, read_yaml(base_file, "base_config", error=GridError))


def _nested(overrides: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return dotted_to_nested(overrides)
    except ConfigError as error:
        raise GridError(f"{where}: {error}") from None


def resolve_config(payload: dict[str, Any], where: str) -> PretrainConfig:
    """A nested payload validated into a ``PretrainConfig``; every problem names its key."""
    for key, allowed in (("preset", PRESETS), ("variant", VARIANTS)):
        value = payload.get(key)
        if value is not None and value not in allowed:
            raise GridError(
                f"{where}: key {key!r}: unknown {key} {value!r}{did_you_mean(value, allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )
    overrides = payload.get("model_overrides")
    if isinstance(overrides, dict) and overrides:  # the model's own problems, keyed as such
        defaults = PretrainConfig.model_fields
        preset = payload.get("preset", defaults["preset"].default)
        variant = payload.get("variant", defaults["variant"].default)
        try:
            make_config(preset, variant, overrides)
        except ConfigError as error:
            raise GridError(f"{where}: key 'model_overrides': {error}") from None
    try:
        config = PretrainConfig.model_validate(payload)
    except ValidationError as error:
        problems = [_config_problem(item, where) for item in error.errors()]
        raise GridError("; ".join(problems)) from None
    _check_data(config.data, where, "data")
    return config


def _config_problem(item: ErrorDetails, where: str) -> str:
    """One problem of a ``PretrainConfig`` validation at ``where``, naming its key."""
    key = ".".join(str(part) for part in item["loc"])
    return describe_problem(item, f"{where}: key {key!r}" if key else where)


def _check_data(spec: str, where: str, key: str) -> None:
    from diffmavil.data import DataError, parse_data_spec

    try:
        parse_data_spec(spec)
    except DataError as error:
        raise GridError(f"{where}: key {key!r}: {error}") from None


def _expand_rows(spec: GridFile, path: Path, base: dict[str, Any]) -> list[GridRow]:
    """Every row crossed with every combination of the grid's axes (``row[key=value,...]``);
    the first baseline row (or the first row) is the baseline."""
    axes = spec.grid or {}
    combinations = [
        dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())
    ]
    rows = [
        _expand_row(name, row, combination, path, base)
        for name, row in spec.row_specs().items()
        for combination in combinations
    ]
    first = next((index for index, row in enumerate(rows) if row.baseline), 0)
    rows = [row.model_copy(update={"baseline": index == first}) for index, row in enumerate(rows)]
    names = [row.name for row in rows]
    if len(set(names)) != len(names):
        raise GridError(f"{path}: key 'rows': repeated row name")
    return rows


def _expand_row(
    row_name: str, row: RowSpec, combination: dict[str, Any], path: Path, base: dict[str, Any]
) -> GridRow:
    label = ",".join(f"{key}={format_value(value)}" for key, value in combination.items())
    name = row_name if not label else (f"{row_name}[{label}]" if row_name else label)
    overrides = {**row.overrides, **combination}
    where = f"{path}: row {name!r}"
    config = resolve_config(deep_merge(base, _nested(overrides, where)), where)
    target = row.match_flops_of
    if target is not None and label:
        target = f"{target}[{label}]"
    return GridRow(
        name=name,
        overrides=overrides,
        config=config,
        baseline=row.baseline,
        description=row.description or "",
        match_flops_of=target,
        seed_count=row.seeds,
    )


def solve_matches(rows: list[GridRow], path: Path) -> list[GridRow]:
    """``rows``, each row with ``budget.match_flops_of`` given the budget at which its
    planned FLOPs equal its target row's (``solve_matched_budget``); a bad target is a
    ``GridError``."""
    by_name = {row.name: row for row in rows}
    return [row if row.match_flops_of is None else _solve_match(row, by_name, path) for row in rows]


def _solve_match(row: GridRow, by_name: dict[str, GridRow], path: Path) -> GridRow:
    where = f"{path}: row {row.name!r}: key 'budget.match_flops_of'"
    target = by_name.get(str(row.match_flops_of))
    if target is None:
        raise GridError(
            f"{where}: unknown row {row.match_flops_of!r}"
            f"{did_you_mean(row.match_flops_of, by_name)}; rows: {', '.join(by_name)}"
        )
    if target is row:
        raise GridError(f"{where}: a row cannot match its own FLOPs")
    if target.match_flops_of is not None:
        raise GridError(
            f"{where}: row {target.name!r} is itself FLOP-matched; match a row with a budget"
        )
    budget = solve_matched_budget(row.config, plan_config(target.config).total_flops)
    return row.model_copy(
        update={
            "config": row.config.model_copy(update={"budget_samples": budget}),
            "differences": {**row.differences, "budget_samples": budget},
        }
    )


def _compiled(grid: Grid) -> Grid:
    """``run.compile``: every pre-training and probe of the grid runs compiled."""
    compiled = {"compile": True}
    return grid.model_copy(
        update={
            "base": grid.base.model_copy(update=compiled),
            "rows": [
                row.model_copy(update={"config": row.config.model_copy(update=compiled)})
                for row in grid.rows
            ],
            "probe": None if grid.probe is None else grid.probe.model_copy(update=compiled),
            "finetune": None
            if grid.finetune is None
            else grid.finetune.model_copy(update=compiled),
        }
    )


# --------------------------------------------------------------------------------------
# Grid-level operations
# --------------------------------------------------------------------------------------


def select_rows(grid: Grid, names: list[str]) -> Grid:
    """The grid restricted to ``names`` (budgets stay solved against the whole grid; the
    baseline row is kept, for the deltas)."""
    known = [row.name for row in grid.rows]
    for name in names:
        if name not in known:
            raise GridError(
                f"{grid.path}: --rows: unknown row {name!r}{did_you_mean(name, known)}; "
                f"rows: {', '.join(known)}"
            )
    keep = set(names) | {grid.baseline.name}
    return grid.model_copy(update={"rows": [row for row in grid.rows if row.name in keep]})


def dry_run_rows(grid: Grid) -> list[dict[str, Any]]:
    """One row per grid row: its resolved differences, planned steps and FLOPs, run ids."""
    baseline_flops = plan_config(grid.baseline.config).total_flops
    out = []
    for row in grid.rows:
        plan = plan_config(row.config)
        ids = [grid.run_id(row, s) for s in grid.seeds_of(row)]
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
