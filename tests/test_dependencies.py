"""Every third-party module the library imports is a declared dependency.

A module that is merely installed on the machine (pulled in by some other package) makes
the suite pass here and the README's install fail on a clean environment; this test reads
the imports themselves, so it fails here too. Imports guarded by ``except ImportError``
are optional by construction and left out.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("diffmavil", "bench")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions() -> set[str]:
    """Distribution names of the core dependencies and of every extra in pyproject.toml."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {_normalise(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}


def _guarded(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside a ``try`` that catches ImportError."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = {
            name.id
            for handler in node.handlers
            if handler.type is not None
            for name in ast.walk(handler.type)
            if isinstance(name, ast.Name)
        }
        if caught & {"ImportError", "ModuleNotFoundError"}:
            for statement in node.body:
                guarded |= {id(n) for n in ast.walk(statement)}
    return guarded


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports in ``path`` that are not guarded."""
    tree = ast.parse(path.read_text(), filename=str(path))
    guarded = _guarded(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_guard_detection_sees_try_except_import_error(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import yaml\n"
        "try:\n    import click\nexcept ImportError:\n    click = None\n"
        "try:\n    import rich\nexcept ValueError:\n    pass\n"
    )
    assert imported_modules(source) == {"yaml", "rich"}


def test_every_library_import_is_a_declared_dependency() -> None:
    declared = declared_distributions()
    providers = packages_distributions()
    undeclared: dict[str, list[str]] = {}
    for package in LIBRARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            for module in imported_modules(path):
                if module in sys.stdlib_module_names or module in LIBRARY or module == "__future__":
                    continue
                distributions = {_normalise(d) for d in providers.get(module, [module])}
                if not distributions & declared:
                    undeclared.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
