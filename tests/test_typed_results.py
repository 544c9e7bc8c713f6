"""Results are read as typed models in the report and the grid: no module of ``bench/report/``
or ``bench/ablate/`` looks a result field up by a string key.

The rule, on the source (``ast``) of every module of the two packages:

- a *result field* is the name of a field of a pydantic model that ``bench.schema`` exports,
  or of a model nested in one (through its fields' annotations), e.g. ``verdict``,
  ``wall_clock_seconds``, ``host``, ``environment``;
- a *string-key look-up* is ``x["name"]`` read or deleted (``ast.Load`` / ``ast.Del``),
  or ``x.get("name")``, ``x.pop("name")``, ``x.setdefault("name")``, on anything (a dict, a
  pandas frame, a row of a CSV), with ``"name"`` a string constant;
- it fails on a string-key look-up of a result field, outside the functions of
  ``ALLOWED`` below, each of which reads data from outside before it is validated.

Not look-ups, so not flagged: building a dict (``d["name"] = value``, a dict display, keyword
arguments), membership (``"name" in d``), keys that are not result fields (a FLOP count by
component name, ``env.packages.get("torch")``, a jinja filter's name) and keys computed at
run time (``line[f"{metric}_mean"]``). A stale entry of ``ALLOWED`` (a function gone, or
no longer looking a field up) fails too, so the list stays short and true.
"""

from __future__ import annotations

import ast
import shutil
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

import bench.schema

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench/report", "bench/ablate")
LOOKUP_METHODS = ("get", "pop", "setdefault")

# module.function (qualified, e.g. a method as Class.method): why it may look fields up by key
ALLOWED: dict[str, str] = {
    "bench.report.load.classify_json": (
        "tells what an arbitrary JSON file is (its kind, whether it has rows) before "
        "choosing the model that validates it"
    ),
    "bench.ablate.grid.resolve_config": (
        "reads a row's preset and variant from the grid YAML's mapping before it is "
        "validated into a PretrainConfig (to locate a model_overrides problem)"
    ),
    "bench.ablate.project_time.project_grid": (
        "reads the request hash of a whole-run.json on disk, which may be of another "
        "version, to decide whether to measure again"
    ),
    "bench.ablate.orchestrate.GridRecords.done": (
        "the executors' callback: a record arrives as the JSON that crossed a process "
        "boundary (a spawned worker, a submitit job; bench.ablate.runner.execute_task) and "
        "is validated when the results are written"
    ),
    "bench.report.timing_tables.phase_table": (
        "the environment of a `diffbench time` measurement as the timing layer hands it "
        "over (bench.timing.benchmark.TimeMeasurement.environment, a dict)"
    ),
}


def _models_of(annotation: object) -> list[type[BaseModel]]:
    found = (
        [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []
    )
    for argument in typing.get_args(annotation):
        found += _models_of(argument)
    return found


def result_fields() -> frozenset[str]:
    """The field names of every model ``bench.schema`` exports and of the models nested
    in them."""
    pending = [m for m in (getattr(bench.schema, n) for n in bench.schema.__all__) if _models_of(m)]
    seen: set[type[BaseModel]] = set()
    names: set[str] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(name)
            pending += _models_of(info.annotation)
    return frozenset(names)


def _key(node: ast.AST) -> str | None:
    """The string constant ``node`` looks up by, if it is a look-up by one."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Load, ast.Del)):
        key = node.slice
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in LOOKUP_METHODS
        and node.args
    ):
        key = node.args[0]
    else:
        return None
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


def _lookups(tree: ast.AST, fields: frozenset[str]) -> list[tuple[str, int, str]]:
    """(qualified function or "<module>", line, key) of each look-up of a field in ``tree``."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = [*scope, child.name]
            else:
                inner = scope
            key = _key(child)
            if key is not None and key in fields:
                found.append((".".join(scope) or "<module>", child.lineno, key))
            visit(child, inner)

    visit(tree, [])
    return found


def scan(root: Path, allowed: dict[str, str]) -> tuple[list[str], list[str]]:
    """(violations, stale allowlist entries) over the packages under ``root``."""
    fields = result_fields()
    violations, used = [], set()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            for scope, line, key in _lookups(ast.parse(path.read_text(), str(path)), fields):
                name = _allowed_name(f"{module}.{scope}", allowed)
                if name is None:
                    relative = path.relative_to(root)
                    violations.append(f"{relative}:{line}: {scope} looks up {key!r} by key")
                else:
                    used.add(name)
    stale = [name for name in allowed if name not in used]
    return violations, stale


def _allowed_name(qualified: str, allowed: dict[str, str]) -> str | None:
    """The entry of ``allowed`` that covers ``qualified`` (itself, or a function it is
    nested in)."""
    return next(
        (name for name in allowed if qualified == name or qualified.startswith(f"{name}.")), None
    )


def test_no_result_field_is_looked_up_by_a_string_key():
    violations, stale = scan(ROOT, ALLOWED)
    assert violations == []
    assert stale == [], "allowlisted without a look-up to allow: remove them from ALLOWED"


def test_every_allowlisted_function_says_why():
    for name, reason in ALLOWED.items():
        assert name.startswith(("bench.report.", "bench.ablate.")) and len(reason) > 40, name


def test_the_result_fields_include_the_verdicts_and_the_records():
    fields = result_fields()
    assert {"verdict", "lower_points", "wall_clock_delta_mean", "gain_points"} <= fields
    assert {
        "run_dir",
        "status",
        "execution",
        "host",
        "accuracy",
        "label",
        "torch_threads",
    } <= fields
    assert "loss" not in fields  # a key of final_losses, not a field


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ('def f(c):\n    return c["verdict"]\n', ["'verdict'"]),
        ('def f(d):\n    return d.get("wall_clock_delta_mean")\n', ["'wall_clock_delta_mean'"]),
        ('def f(r):\n    r.pop("run_dir", None)\n    del r["status"]\n', ["'run_dir'", "'status'"]),
        ('class A:\n    def f(self, e):\n        return e.setdefault("host", "")\n', ["'host'"]),
        ('def f(frame):\n    return frame[frame["baseline"]]\n', ["'baseline'"]),
        # not look-ups of a field: a store, a non-field key, a computed key, membership
        (
            'def f(d, m):\n    d["verdict"] = 1\n    return d["torch"], d[f"{m}_mean"], '
            '"row" in d\n',
            [],
        ),
    ],
)
def test_a_planted_look_up_is_found(tmp_path: Path, source: str, flagged: list[str]):
    """The scan of a copy of the packages with one module added fails exactly on its
    look-ups of result fields; the real packages stay clean."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package)
    before, _ = scan(tmp_path, ALLOWED)
    (tmp_path / "bench/report/planted.py").write_text(source)
    violations, stale = scan(tmp_path, ALLOWED)
    planted = [v for v in violations if v not in before]
    assert [v.split(" looks up ")[1].split()[0] for v in planted] == flagged
    assert all(v.startswith("bench/report/planted.py:") for v in planted)
    assert stale == []


def test_an_allowlisted_function_covers_its_own_look_ups_only(tmp_path: Path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package)
    before, _ = scan(tmp_path, ALLOWED)
    load = tmp_path / "bench/report/load.py"
    load.write_text(
        load.read_text() + '\n\ndef classify_json_again(payload):\n    return payload["kind"]\n'
    )
    violations, _ = scan(tmp_path, ALLOWED)
    line = len(load.read_text().splitlines())
    assert [v for v in violations if v not in before] == [
        f"bench/report/load.py:{line}: classify_json_again looks up 'kind' by key"
    ]
    violations, stale = scan(tmp_path, {k: v for k, v in ALLOWED.items() if "load" not in k})
    assert any("classify_json looks up 'kind'" in v for v in violations)
    assert stale == []
    violations, stale = scan(tmp_path, {**ALLOWED, "bench.report.load.read_metrics": "gone"})
    assert stale == ["bench.report.load.read_metrics"]
