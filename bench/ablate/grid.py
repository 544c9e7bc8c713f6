"""Ablation grids: the YAML format, validation of every row before anything runs, and the
expansion into rows (their planning, budgets, run ids and dry run: ``bench.ablate.plan``).

A grid file (see the README, section `diffbench ablate`)::

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

import difflib
import itertools
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bench.ablate.plan import (
    describe_differences,
    differences,
    format_value,
    plan_config,
    row_run_id,
    solve_matched_budget,
)
from bench.errors import BadInput
from bench.requests import ProjectTimeSpec, RunSpec, StatisticsSpec, TimeSpec
from diffmavil.config import (
    PRESETS,
    VARIANTS,
    ConfigError,
    ModelConfig,
    deep_merge,
    dotted_to_nested,
    flatten,
    format_validation_error,
)
from diffmavil.training.config import FinetuneConfig, PretrainConfig

TOP_LEVEL_KEYS = (
    "name",
    "description",
    "base",
    "base_config",
    "rows",
    "grid",
    "seeds",
    "run",
    "statistics",
)
ROW_META_KEYS = ("baseline", "description", "budget.match_flops_of", "seeds")
CONTROL_KINDS = ("random", "fbank")


class GridError(BadInput):
    """A grid file is invalid; the message names the file, the row and the key."""


# --------------------------------------------------------------------------------------
# Known keys: every dotted path of PretrainConfig (model_overrides -> ModelConfig)
# --------------------------------------------------------------------------------------


def _model_class(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_class(arg)
            if found is not None:
                return found
    return None


def _section(cls: type[BaseModel], name: str) -> type[BaseModel] | None:
    if cls is PretrainConfig and name == "model_overrides":
        return ModelConfig
    return _model_class(cls.model_fields[name].annotation)


@lru_cache(maxsize=1)
def known_keys() -> tuple[str, ...]:
    """Every dotted key a row may set (sections and leaves)."""
    keys: list[str] = []

    def walk(cls: type[BaseModel], prefix: str) -> None:
        for name in cls.model_fields:
            dotted = f"{prefix}{name}"
            keys.append(dotted)
            sub = _section(cls, name)
            if sub is not None:
                walk(sub, f"{dotted}.")

    walk(PretrainConfig, "")
    keys.extend(ROW_META_KEYS)
    return tuple(keys)


def check_key(key: str) -> str | None:
    """None if ``key`` is a known dotted key, else the reason (with a suggestion)."""
    if key in ROW_META_KEYS:
        return None
    cls: type[BaseModel] | None = PretrainConfig
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if cls is None:
            parent = ".".join(parts[:depth])
            return f"{parent!r} is a value, not a section"
        if part not in cls.model_fields:
            hint = difflib.get_close_matches(key, known_keys(), n=1, cutoff=0.6)
            return "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        cls = _section(cls, part)
    return None


# --------------------------------------------------------------------------------------
# The expanded grid
# --------------------------------------------------------------------------------------


@dataclass
class GridRow:
    """One row of the grid after expansion (one config per seed)."""

    name: str
    overrides: dict[str, Any]  # the row's own dotted keys (grid values included)
    config: PretrainConfig  # at the first seed
    baseline: bool = False
    description: str = ""
    match_flops_of: str | None = None
    differences: dict[str, Any] = field(default_factory=dict)  # resolved, vs the base
    seed_count: int | None = None  # runs at the grid's first seed_count seeds (None: all)

    def at_seed(self, seed: int) -> PretrainConfig:
        return self.config.model_copy(update={"seed": seed})


@dataclass
class Grid:
    path: Path
    name: str
    description: str
    base: PretrainConfig
    rows: list[GridRow]
    seeds: list[int]
    run: RunSpec
    probe: FinetuneConfig | None
    statistics: StatisticsSpec = field(default_factory=StatisticsSpec)

    @property
    def baseline(self) -> GridRow:
        return next(row for row in self.rows if row.baseline)

    def seeds_of(self, row: GridRow) -> list[int]:
        """The seeds ``row`` runs at: the grid's first ``seeds`` (a row setting), or all."""
        return self.seeds if row.seed_count is None else self.seeds[: row.seed_count]

    def probe_at_seed(self, seed: int) -> FinetuneConfig | None:
        return None if self.probe is None else self.probe.model_copy(update={"seed": seed})


# --------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------


def _read_yaml(path: Path, what: str) -> Any:
    import yaml

    if not path.exists():
        raise GridError(f"{path}: {what} not found")
    if path.is_dir():
        raise GridError(f"{path}: {what} is a directory, not a YAML file")
    text = path.read_text()
    if not text.strip():
        raise GridError(f"{path}: the file is empty")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise GridError(f"{path}: not valid YAML{where}: {problem}") from None


def _validation_key(error: ValidationError, fallback: str) -> tuple[str, str]:
    """(dotted key, message) of the first problem of a pydantic error."""
    item = error.errors()[0]
    key = ".".join(str(p) for p in item["loc"]) or fallback
    message = format_validation_error(error).split("; ")[0]
    prefix = ".".join(str(p) for p in item["loc"])
    if prefix and message.startswith(prefix + ": "):
        message = message[len(prefix) + 2 :]
    return key, message


def _check_data(spec: Any, where: str, key: str) -> None:
    from diffmavil.data import DataError, parse_data_spec

    if not isinstance(spec, str):
        raise GridError(f"{where}: key {key!r}: expected a data spec string (got {spec!r})")
    try:
        parse_data_spec(spec)
    except DataError as error:
        raise GridError(f"{where}: key {key!r}: {error}") from None


def _check_choice(payload: dict[str, Any], key: str, allowed: dict[str, Any], where: str) -> None:
    value = payload.get(key)
    if value is None or value in allowed:
        return
    hint = difflib.get_close_matches(str(value), list(allowed), n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise GridError(
        f"{where}: key {key!r}: unknown {key} {value!r}{suggestion}; allowed: {', '.join(allowed)}"
    )


def _resolve(payload: dict[str, Any], where: str) -> PretrainConfig:
    """Validate a nested payload into a PretrainConfig; errors name the key."""
    _check_choice(payload, "preset", PRESETS, where)
    _check_choice(payload, "variant", VARIANTS, where)
    try:
        config = PretrainConfig.model_validate(payload)
    except ValidationError as error:
        key, message = _validation_key(error, "model_overrides")
        raise GridError(f"{where}: key {key!r}: {message}") from None
    except ConfigError as error:
        raise GridError(f"{where}: key 'model_overrides': {error}") from None
    _check_data(config.data, where, "data")
    return config


def _check_keys(flat: dict[str, Any], where: str) -> None:
    for key in flat:
        reason = check_key(str(key))
        if reason is not None:
            raise GridError(f"{where}: key {key!r}: {reason}")


def _as_mapping(value: Any, path: Path, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GridError(f"{path}: {what}: expected a mapping (got {type(value).__name__})")
    return value


def load_grid(path: str | Path, seeds: list[int] | None = None) -> Grid:
    """Read, validate and expand a grid file. Raises ``GridError`` on the first problem."""
    path = Path(path)
    document = _read_yaml(path, "grid file")
    if not isinstance(document, dict):
        raise GridError(
            f"{path}: expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)} "
            f"(got {type(document).__name__})"
        )
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            hint = difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise GridError(
                f"{path}: key {key!r}: unknown top-level key{suggestion}; allowed: "
                f"{', '.join(TOP_LEVEL_KEYS)}"
            )
    name = str(document.get("name") or path.stem)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise GridError(f"{path}: key 'name': {name!r} must be letters, digits, '-', '_', '.'")

    # base: base_config (a YAML file of PretrainConfig fields) then inline fields over it
    base_payload: dict[str, Any] = {}
    if document.get("base_config") is not None:
        base_file = Path(str(document["base_config"]))
        if not base_file.is_absolute():
            base_file = path.parent / base_file
        if not base_file.exists():
            raise GridError(f"{path}: key 'base_config': {base_file} not found")
        base_payload = _as_mapping(_read_yaml(base_file, "base_config"), base_file, "base_config")
    inline = _as_mapping(document.get("base"), path, "key 'base'")
    base_flat = {**flatten(base_payload), **flatten(inline)}
    _check_keys(base_flat, f"{path}: base")
    for meta in ROW_META_KEYS:
        if meta in base_flat:
            raise GridError(f"{path}: base: key {meta!r}: belongs in a row, not in the base")
    base_nested = dotted_to_nested(base_flat)
    base = _resolve(base_nested, f"{path}: base")

    # run
    run = _run_spec(_as_mapping(document.get("run"), path, "key 'run'"), path)
    probe = run.probe
    if probe is not None:
        _check_data(probe.data, f"{path}: run", "run.probe.data")

    # seeds
    if seeds is None:
        seeds = document.get("seeds", [0])
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            seeds = [seeds]
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        ):
            raise GridError(
                f"{path}: key 'seeds': expected a list of integers >= 0 (got {seeds!r})"
            )
    if len(set(seeds)) != len(seeds):
        raise GridError(f"{path}: key 'seeds': repeated seed in {seeds}")

    rows = _expand_rows(document, path, base_nested)
    for row in rows:
        row.differences = differences(base, row.config)
    solve_matches(rows, path)
    statistics = _statistics(document.get("statistics"), path, rows)
    if run.compile:  # every pre-training and probe of the grid runs compiled
        base = base.model_copy(update={"compile": True})
        for row in rows:
            row.config = row.config.model_copy(update={"compile": True})
        probe = probe.model_copy(update={"compile": True}) if probe is not None else None
    return Grid(
        path,
        name,
        str(document.get("description") or ""),
        base,
        rows,
        list(seeds),
        run,
        probe,
        statistics,
    )


def _statistics(payload: Any, path: Path, rows: list[GridRow]) -> StatisticsSpec:
    """Validate ``statistics:``; its comparisons must name rows of the grid."""
    try:
        spec = StatisticsSpec.model_validate(payload or {})
    except ValidationError as error:
        key, message = _validation_key(error, "statistics")
        raise GridError(f"{path}: statistics: key 'statistics.{key}': {message}") from None
    names = [row.name for row in rows]
    for index, comparison in enumerate(spec.comparisons):
        for side in ("candidate", "reference"):
            name = getattr(comparison, side)
            if name not in names:
                hint = difflib.get_close_matches(name, names, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise GridError(
                    f"{path}: statistics: key 'statistics.comparisons.{index}.{side}': "
                    f"unknown row {name!r}{suggestion}; rows: {', '.join(names)}"
                )
        if comparison.candidate == comparison.reference:
            raise GridError(
                f"{path}: statistics: key 'statistics.comparisons.{index}': a row cannot be "
                "compared with itself"
            )
    return spec


_SECTIONS: dict[str, type[BaseModel]] = {
    "probe": FinetuneConfig,
    "time": TimeSpec,
    "project_time": ProjectTimeSpec,
}


def _run_spec(payload: dict[str, Any], path: Path) -> RunSpec:
    """Validate ``run:``; an unknown key gets a suggestion from its own section."""
    try:
        return RunSpec.model_validate(payload)
    except ValidationError as error:
        item = error.errors()[0]
        loc = [str(p) for p in item["loc"]]
        key, message = _validation_key(error, "run")
        if item["type"] == "extra_forbidden":
            section = _SECTIONS.get(loc[0]) if len(loc) > 1 else RunSpec
            fields = list(section.model_fields) if section is not None else []
            close = difflib.get_close_matches(loc[-1], fields, n=1)
            prefix = "run." + ".".join(loc[:-1]) + "." if len(loc) > 1 else "run."
            message = "unknown key" + (f" (did you mean '{prefix}{close[0]}'?)" if close else "")
        raise GridError(f"{path}: run: key 'run.{key}': {message}") from None


def _expand_rows(document: dict[str, Any], path: Path, base: dict[str, Any]) -> list[GridRow]:
    raw_rows = document.get("rows")
    if raw_rows is None:
        named: dict[str, dict[str, Any]] = {}
    elif isinstance(raw_rows, dict):
        named = {}
        for row_name, body in raw_rows.items():
            if body is not None and not isinstance(body, dict):
                raise GridError(
                    f"{path}: row {row_name!r}: expected a mapping of dotted keys "
                    f"(got {type(body).__name__})"
                )
            named[str(row_name)] = flatten(body or {})
    else:
        raise GridError(f"{path}: key 'rows': expected a mapping of row name -> overrides")

    axes: list[tuple[str, list[Any]]] = []
    raw_grid = document.get("grid")
    if raw_grid is not None:
        if not isinstance(raw_grid, dict) or not raw_grid:
            raise GridError(f"{path}: key 'grid': expected a mapping of dotted key -> list")
        for key, values in flatten_grid(raw_grid).items():
            reason = check_key(key)
            if reason is not None or key in ROW_META_KEYS:
                reason = reason or "not allowed in grid (set it in a row)"
                raise GridError(f"{path}: grid: key {key!r}: {reason}")
            if not isinstance(values, list) or not values:
                raise GridError(f"{path}: grid: key {key!r}: expected a non-empty list of values")
            axes.append((key, values))
    if not named:
        named = {"base": {}} if not axes else {"": {}}

    combos = list(itertools.product(*[values for _, values in axes])) or [()]
    rows: list[GridRow] = []
    for row_name, flat in named.items():
        where = f"{path}: row {row_name!r}" if row_name else f"{path}: grid"
        _check_keys(flat, where)
        baseline = flat.get("baseline", False)
        if not isinstance(baseline, bool):
            raise GridError(f"{where}: key 'baseline': expected true or false (got {baseline!r})")
        match = flat.get("budget.match_flops_of")
        if match is not None and not isinstance(match, str):
            raise GridError(f"{where}: key 'budget.match_flops_of': expected a row name")
        if match is not None and "budget_samples" in flat:
            raise GridError(
                f"{where}: key 'budget_samples': conflicts with budget.match_flops_of "
                "(the budget is solved)"
            )
        seed_count = flat.get("seeds")
        if seed_count is not None and (
            not isinstance(seed_count, int) or isinstance(seed_count, bool) or seed_count < 1
        ):
            raise GridError(
                f"{where}: key 'seeds': expected an integer >= 1, the number of the grid's "
                f"seeds this row runs at (got {seed_count!r})"
            )
        overrides = {k: v for k, v in flat.items() if k not in ROW_META_KEYS}
        for combo in combos:
            combo_overrides = dict(zip([k for k, _ in axes], combo, strict=True))
            label = ",".join(f"{k}={format_value(v)}" for k, v in combo_overrides.items())
            name = row_name if not label else (f"{row_name}[{label}]" if row_name else label)
            merged_flat = {**overrides, **combo_overrides}
            row_where = f"{path}: row {name!r}"
            try:
                nested = dotted_to_nested(merged_flat)
            except ConfigError as error:
                raise GridError(f"{row_where}: {error}") from None
            config = _resolve(deep_merge(base, nested), row_where)
            target = None
            if match is not None:
                target = match if not label else f"{match}[{label}]"
            description = str(flat.get("description") or "")
            row = GridRow(name, merged_flat, config, baseline, description, target)
            row.seed_count = seed_count
            rows.append(row)
    baselines = [row for row in rows if row.baseline]
    if len({row.name.split("[")[0] for row in baselines}) > 1:
        names = ", ".join(repr(row.name) for row in baselines)
        raise GridError(f"{path}: key 'baseline': more than one baseline row ({names})")
    if not baselines:
        rows[0].baseline = True
    elif len(baselines) > 1:  # a baseline row crossed with a grid: its first combination
        for row in baselines[1:]:
            row.baseline = False
    names = [row.name for row in rows]
    if len(set(names)) != len(names):
        raise GridError(f"{path}: key 'rows': repeated row name")
    return rows


def flatten_grid(raw: dict[str, Any]) -> dict[str, Any]:
    """Grid axes may be nested mappings too; lists are the leaves."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            for sub, values in flatten_grid(value).items():
                flat[f"{key}.{sub}"] = values
        else:
            flat[str(key)] = value
    return flat


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


def select_rows(grid: Grid, names: list[str]) -> Grid:
    """The grid restricted to ``names`` (budgets stay solved against the whole grid; the
    baseline row is kept, for the deltas)."""
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
