"""The grid file's schema: ``GridFile``, one frozen pydantic model of a grid YAML (see
``bench.ablate.grid`` for the format), and the one-line ``GridError`` its problems become.

``GridFile`` checks the document's shape and keys: the top-level keys; ``base`` and every
row as dotted ``PretrainConfig`` keys (``model_overrides.<ModelConfig field>`` included)
plus a row's own keys (``ROW_KEYS``); ``grid`` axes; seeds; ``run`` (a ``RunSpec``);
``statistics`` (a ``StatisticsSpec``). The values a resolved config must satisfy, and
whatever names another row, are checked when the grid is expanded (``bench.ablate.grid``).
"""

from __future__ import annotations

import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from bench.errors import BadInput
from bench.requests import RunSpec, StatisticsSpec
from diffmavil.config import (
    Frozen,
    ModelConfig,
    did_you_mean,
    flatten,
    format_validation_error,
)
from diffmavil.training.config import PretrainConfig

# The keys a row sets about itself, beside its config overrides.
ROW_KEYS = ("baseline", "description", "budget.match_flops_of", "seeds")
# The error type of a problem with a dotted key itself (not with its value).
UNKNOWN_KEY = "unknown_key"


class GridError(BadInput):
    """A grid file is invalid; the message names the file, the row and the key."""


# --------------------------------------------------------------------------------------
# Known keys: every dotted path of PretrainConfig (model_overrides -> ModelConfig)
# --------------------------------------------------------------------------------------


def model_class(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (``X``, ``X | None``, ``list[X]``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            found = model_class(arg)
            if found is not None:
                return found
    return None


def _config_section(cls: type[BaseModel], name: str) -> type[BaseModel] | None:
    if cls is PretrainConfig and name == "model_overrides":
        return ModelConfig
    return model_class(cls.model_fields[name].annotation)


@lru_cache(maxsize=1)
def known_keys() -> tuple[str, ...]:
    """Every dotted key a row may set (sections and leaves, the row's own keys last)."""
    keys: list[str] = []

    def walk(cls: type[BaseModel], prefix: str) -> None:
        for name in cls.model_fields:
            dotted = f"{prefix}{name}"
            keys.append(dotted)
            section = _config_section(cls, name)
            if section is not None:
                walk(section, f"{dotted}.")

    walk(PretrainConfig, "")
    keys.extend(ROW_KEYS)
    return tuple(keys)


def config_key_problem(key: str) -> str | None:
    """None if ``key`` is a dotted ``PretrainConfig`` key, else why not (with a hint)."""
    if key in ROW_KEYS:
        return "a row's own key: set it in a row"
    cls: type[BaseModel] | None = PretrainConfig
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if cls is None:
            return f"{'.'.join(parts[:depth])!r} is a value, not a section"
        if part not in cls.model_fields:
            return "unknown key" + did_you_mean(key, known_keys())
        cls = _config_section(cls, part)
    return None


def _config_key(key: str) -> str:
    problem = config_key_problem(key)
    if problem is not None:
        raise PydanticCustomError(UNKNOWN_KEY, "{problem}", {"problem": problem})
    return key


def _flattened(value: Any) -> Any:
    """Nested or dotted mappings as dotted keys; None as no keys; anything else as is (for
    pydantic to refuse)."""
    if value is None:
        return {}
    return flatten(value) if isinstance(value, dict) else value


def _grid_axes(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a mapping of dotted key -> list of values")
    return flatten(value)


def _seed_list(value: Any) -> list[int]:
    seeds = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise ValueError("expected a list of integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise ValueError("repeated seed")
    return seeds


def _seed_count(value: Any) -> Any:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(
            "expected an integer >= 1, the number of the grid's seeds this row runs at"
        )
    return value


ConfigKey = Annotated[str, AfterValidator(_config_key)]
# dotted PretrainConfig keys -> values (a nested mapping is flattened first)
Overrides = Annotated[dict[ConfigKey, Any], BeforeValidator(_flattened)]
# dotted PretrainConfig keys -> the values the grid crosses
GridAxes = Annotated[
    dict[ConfigKey, Annotated[list[Any], Field(min_length=1)]], BeforeValidator(_grid_axes)
]
EmptyIfNone = BeforeValidator(lambda value: {} if value is None else value)


# --------------------------------------------------------------------------------------
# The file
# --------------------------------------------------------------------------------------


class RowSpec(Frozen):
    """One row of ``rows:``: dotted overrides of the base, and the row's own keys."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    overrides: Overrides = Field(default_factory=dict)
    baseline: StrictBool = Field(False, description="deltas are against this row")
    description: str | None = None
    match_flops_of: str | None = Field(
        None,
        alias="budget.match_flops_of",
        description="solve this row's budget so its planned FLOPs match that row's",
    )
    seeds: Annotated[int | None, BeforeValidator(_seed_count)] = Field(
        None, description="run at the grid's first N seeds only"
    )

    @model_validator(mode="before")
    @classmethod
    def _own_keys_apart(cls, body: Any) -> Any:
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise ValueError("expected a mapping of dotted keys")
        overrides = flatten(body)
        own = {key: overrides.pop(key) for key in ROW_KEYS if key in overrides}
        return {**own, "overrides": overrides}

    @model_validator(mode="after")
    def _budget_is_solved(self) -> RowSpec:
        if self.match_flops_of is not None and "budget_samples" in self.overrides:
            raise ValueError(
                "budget_samples conflicts with budget.match_flops_of (the budget is solved)"
            )
        return self


class GridFile(Frozen):
    """A grid YAML file, validated; ``bench.ablate.grid.load_grid`` expands it into rows."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    name: str | None = Field(None, description="default: the file's stem")
    description: str | None = None
    base: Overrides = Field(default_factory=dict, description="the config every row starts from")
    base_config: Path | None = Field(
        None, description="a YAML file of PretrainConfig fields under base (relative to the grid)"
    )
    rows: dict[str, RowSpec] | None = None
    grid: GridAxes | None = Field(None, description="a cartesian product crossed with the rows")
    seeds: Annotated[list[int], BeforeValidator(_seed_list)] = Field(default_factory=lambda: [0])
    run: Annotated[RunSpec, EmptyIfNone] = Field(default_factory=RunSpec)
    statistics: Annotated[StatisticsSpec, EmptyIfNone] = Field(default_factory=StatisticsSpec)

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, name: str | None) -> str | None:
        if not name:
            return None
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError("must be letters, digits, '-', '_', '.'")
        return name

    @field_validator("rows")
    @classmethod
    def _one_baseline(cls, rows: dict[str, RowSpec] | None) -> dict[str, RowSpec] | None:
        baselines = [name for name, row in (rows or {}).items() if row.baseline]
        if len(baselines) > 1:
            raise ValueError(f"more than one baseline row ({', '.join(map(repr, baselines))})")
        return rows

    def row_specs(self) -> dict[str, RowSpec]:
        """The rows to expand: ``rows:``, else the base alone (``base``, or unnamed: the
        grid's combinations)."""
        if self.rows:
            return self.rows
        return {"": RowSpec()} if self.grid else {"base": RowSpec()}


def read_grid_file(path: Path, document: Any) -> GridFile:
    """``document`` (a grid file's parsed YAML) validated; a ``GridError`` otherwise."""
    if not isinstance(document, dict):
        raise GridError(
            f"{path}: expected a mapping with keys {', '.join(GridFile.model_fields)} "
            f"(got {type(document).__name__})"
        )
    try:
        return GridFile.model_validate(document)
    except ValidationError as error:
        raise GridError(f"{path}: {grid_file_problems(error)}") from None


def read_base_overrides(path: Path, document: Any) -> dict[str, Any]:
    """A ``base_config`` file's fields as dotted keys, validated as ``base:`` is."""
    try:
        return GridFile.model_validate({"base": document}).base
    except ValidationError as error:
        raise GridError(f"{path}: {grid_file_problems(error)}") from None


# --------------------------------------------------------------------------------------
# Problems as one line: file, where, key, what is allowed
# --------------------------------------------------------------------------------------


def describe_problem(item: ErrorDetails, label: str) -> str:
    """``label: message (got value)`` for one problem of a ``ValidationError``."""
    if item["type"] in ("model_type", "dict_type"):  # not "instance of RunSpec": YAML words
        item = {**item, "type": PydanticCustomError("mapping", "expected a mapping")}
    one = ValidationError.from_exception_data("grid", [{**item, "loc": (label,)}])
    return format_validation_error(one)


def grid_file_problems(error: ValidationError) -> str:
    """Every problem of a ``GridFile`` validation, ``; ``-separated, each naming where it is
    (``base``, ``row 'x'``, ``grid``, ``run``, ``statistics``) and the dotted key."""
    problems = []
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if part != "[key]")
        label = grid_file_label(loc)
        if item["type"] == UNKNOWN_KEY:
            problems.append(f"{label}: {item['msg']}")
        elif item["type"] == "extra_forbidden":
            problems.append(f"{label}: {_unknown_key(loc)}")
        else:
            problems.append(describe_problem(item, label))
    return "; ".join(problems)


def grid_file_label(loc: tuple[int | str, ...]) -> str:
    """Where a problem at pydantic location ``loc`` of a ``GridFile`` is, in the file's
    words: ``row 'diff': key 'masking.kind'``, ``run: key 'run.probe.epochs'``, ..."""
    if not loc:
        return "grid file"
    head, rest = str(loc[0]), [str(part) for part in loc[1:]]
    if head == "rows" and rest:
        row, keys = rest[0], rest[1:]
        keys = keys[1:] if keys[:1] == ["overrides"] else keys
        return f"row {row!r}" + (f": key {'.'.join(keys)!r}" if keys else "")
    if not rest:
        return f"key {head!r}"
    if head in ("base", "grid"):
        return f"{head}: key {'.'.join(rest)!r}"
    if head in ("run", "statistics"):
        return f"{head}: key {'.'.join([head, *rest])!r}"
    return f"key {'.'.join([head, *rest])!r}"


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    """Why the key at ``loc`` is refused: unknown, with the closest key of its section."""
    cls: type[BaseModel] | None = GridFile
    for part in loc[:-1]:
        if isinstance(part, int) or cls is None:
            continue
        cls = model_class(cls.model_fields[part].annotation)
    allowed = list(cls.model_fields) if cls is not None else []
    if len(loc) == 1:
        return (
            f"unknown top-level key{did_you_mean(loc[0], allowed)}; allowed: {', '.join(allowed)}"
        )
    # the hint spelt as the key is (``run.probe.epochs``), found among the section's names
    # alone (a shared prefix would make every name look close)
    prefix = ".".join(str(part) for part in loc[:-1])
    return "unknown key" + did_you_mean(loc[-1], allowed).replace("'", f"'{prefix}.", 1)
