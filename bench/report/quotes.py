"""Figures quoted in prose, as generated blocks that a test recomputes from stored results.

A document (``README.md``, a report's ``README.md``) marks every figure it quotes::

    the full recipe saved <!-- quote:table2/flop-saving -->22.7%<!-- /quote --> of the FLOPs

The key names a quote function of a registry (``bench.report.quoted.QUOTED``: key ->
function of the repository root) that computes the text from the results stored in the
repository. ``refresh(text, root, registry)`` rewrites every block of a document;
``stale(text, root, registry)`` lists the blocks whose text differs from what the stored
results give, which is what ``tests/test_quotes.py`` checks for every document that holds
a block. Rewrite them with::

    python -m bench.report.quoted README.md reports/table2/README.md
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

QuoteFunction = Callable[[Path], str]
Registry = dict[str, QuoteFunction]
BLOCK = re.compile(r"<!-- quote:(?P<key>[\w./-]+) -->(?P<text>.*?)<!-- /quote -->", re.S)


class UnknownQuote(KeyError):
    """A block names a key the registry has no function for."""


def _value(key: str, root: Path, registry: Registry) -> str:
    if key not in registry:
        raise UnknownQuote(f"no quote function for {key!r}; known: {', '.join(sorted(registry))}")
    return registry[key](root)


def refresh(text: str, root: Path, registry: Registry) -> str:
    """``text`` with every block's figure recomputed from the stored results."""
    return BLOCK.sub(
        lambda m: f"<!-- quote:{m['key']} -->{_value(m['key'], root, registry)}<!-- /quote -->",
        text,
    )


def stale(text: str, root: Path, registry: Registry) -> list[tuple[str, str, str]]:
    """(key, quoted, computed) for every block whose figure is not the stored results'."""
    out = []
    for match in BLOCK.finditer(text):
        computed = _value(match["key"], root, registry)
        if match["text"] != computed:
            out.append((match["key"], match["text"], computed))
    return out


def refresh_files(paths: list[Path], root: Path, registry: Registry) -> list[Path]:
    """Rewrite the blocks of each file in place; the files that changed."""
    changed = []
    for path in paths:
        text = path.read_text()
        new = refresh(text, root, registry)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed
