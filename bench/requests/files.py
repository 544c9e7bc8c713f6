"""Reading the YAML files a request comes from (a grid, a ``--config``, a search space):
the project's one YAML loader, with one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import BadInput


def read_yaml(
    path: Path, what: str, *, error: type[BadInput] = BadInput, mapping: bool = True
) -> Any:
    """The parsed YAML document at ``path``; ``what`` names it in errors (``"grid file"``).

    Raises ``error`` (one line naming the file and, for bad YAML, the line and column) when
    the file is missing, a directory, empty, not YAML, or, with ``mapping``, not a mapping.
    """
    import yaml

    if not path.exists():
        raise error(f"{path}: {what} not found")
    if path.is_dir():
        raise error(f"{path}: {what} is a directory, not a YAML file")
    text = path.read_text()
    if not text.strip():
        raise error(f"{path}: the file is empty")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        reason = getattr(problem, "problem", None) or str(problem).splitlines()[0]
        raise error(f"{path}: not valid YAML{where}: {reason}") from None
    if mapping and not isinstance(document, dict):
        raise error(f"{path}: expected a mapping of keys, got {type(document).__name__}")
    return document
