"""Atomic file writes: write to a temporary file in the same folder, fsync, rename.

A reader (or a resumed run) sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(
    path: str | Path,
    write: Callable[[IO[bytes]], None],
    *,
    verify: Callable[[Path], None] | None = None,
    keep_previous: str | Path | None = None,
) -> Path:
    """Call ``write(file)`` on a temporary file and rename it onto ``path``.

    ``verify(temporary_path)`` (raising on a bad file) runs on the written file before the
    rename; ``keep_previous``: keep the file ``path`` held under that name too (a hard
    link), so a good previous file survives until the new one is written and verified.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if verify is not None:
            verify(Path(tmp))
        if keep_previous is not None and path.exists():
            _keep_previous(path, Path(keep_previous))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _keep_previous(path: Path, previous: Path) -> None:
    """Make ``previous`` a hard link to ``path``'s file (atomically), so ``path`` itself
    never goes missing; where hard links are not supported, rename it."""
    link = previous.with_name(f".{previous.name}.{os.getpid()}.link")
    try:
        link.unlink(missing_ok=True)
        os.link(path, link)
        os.replace(link, previous)
    except OSError:
        link.unlink(missing_ok=True)
        os.replace(path, previous)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, payload: Any) -> Path:
    return atomic_write_text(
        path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n"
    )
