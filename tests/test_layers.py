"""The harness's layering, checked on the source: every import of every module of
``bench`` (module level, inside functions and under ``TYPE_CHECKING`` alike) goes to its
own layer or a lower one (``bench.LAYERS``), there is no import cycle, and the model
library never imports the harness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench import LAYERS

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(package: str, root: Path = ROOT) -> dict[str, Path]:
    """Every module of ``package`` under ``root``, by dotted name."""
    return {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports anywhere in its body: ``from a.b import
    c`` counts ``a.b`` and, when it is a module, ``a.b.c``; relative imports are resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            targets = [source, *(f"{source}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a module a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer_of(module: str, layers: tuple[str, ...]) -> int:
    """The index of the longest layer prefix of ``module``; a module in none is an error."""
    matches = [
        i for i, layer in enumerate(layers) if module == layer or module.startswith(f"{layer}.")
    ]
    if not matches:
        raise AssertionError(f"{module} is in no layer of bench.LAYERS")
    return max(matches, key=lambda i: len(layers[i]))


def layering_violations(modules: dict[str, Path], layers: tuple[str, ...]) -> list[str]:
    """Upward imports and import cycles among ``modules``, as readable lines."""
    graph = {name: imports_of(name, path, set(modules)) for name, path in modules.items()}
    problems = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            if target == "bench" or name == "bench":
                continue  # the package's docstring and LAYERS import nothing
            if layer_of(target, layers) > layer_of(name, layers):
                problems.append(f"upward import: {name} -> {target}")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_harness_import_goes_down_the_layers_without_a_cycle():
    assert layering_violations(package_modules("bench"), LAYERS) == []


def test_the_model_library_never_imports_the_harness():
    for name, path in package_modules("diffmavil").items():
        harness = imports_of(name, path, set(package_modules("bench")) | {"bench"})
        assert not harness, f"{name} imports {sorted(harness)}"


@pytest.mark.parametrize(
    "planted, expected",
    [
        # a leaf reaching up into the CLI, from inside a function (a lazy import)
        (
            ("bench/schema/planted.py", "def f():\n    from bench.cli.output import emit\n"),
            "upward import: bench.schema.planted -> bench.cli.output",
        ),
        # two modules of one layer importing each other
        (
            ("bench/ablate/planted.py", "from bench.ablate.orchestrate import run_grid\n"),
            "import cycle",
        ),
    ],
)
def test_a_planted_violation_is_found(tmp_path: Path, planted, expected):
    """The check on a copy of the harness with one bad import added fails, naming it."""
    import shutil

    shutil.copytree(ROOT / "bench", tmp_path / "bench")
    relative, source = planted
    (tmp_path / relative).write_text(source)
    if expected == "import cycle":  # close the loop: orchestrate imports the planted module
        target = tmp_path / "bench/ablate/orchestrate.py"
        target.write_text(target.read_text() + "\nfrom bench.ablate import planted\n")
    problems = layering_violations(package_modules("bench", tmp_path), LAYERS)
    assert any(line.startswith(expected) for line in problems), problems
    assert layering_violations(package_modules("bench"), LAYERS) == []
