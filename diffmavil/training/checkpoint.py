"""Checkpoint files: loaded with ``torch.load(weights_only=True)`` only.

A checkpoint holds tensors and plain containers (dicts, lists, numbers, strings). A file
that needs anything more to load (a pickled class or function, which would run code while
unpickling) is refused with one line naming the file; nothing in it is executed.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message is one line naming the file."""


class UnsafeCheckpoint(CheckpointError):
    """The file holds pickled objects beyond tensors and plain containers."""


class CorruptCheckpoint(CheckpointError):
    """The file cannot be read (truncated, empty, damaged)."""


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The payload of a checkpoint file, loaded weights-only.

    Raises ``UnsafeCheckpoint`` for a file that needs more than weights-only loading and
    ``CorruptCheckpoint`` for one that cannot be read.
    """
    import torch

    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        unsupported = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if unsupported:
            raise UnsafeCheckpoint(
                f"{path}: refused: it holds a pickled object ({unsupported.group(1)}) that "
                "could run code when loaded; only weights-only checkpoints are loaded"
            ) from None
        raise CorruptCheckpoint(f"{path}: unreadable checkpoint ({_first_line(error)})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise CorruptCheckpoint(f"{path}: unreadable checkpoint ({_first_line(error)})") from None
    if not isinstance(payload, dict):
        raise CorruptCheckpoint(
            f"{path}: not a checkpoint (holds a {type(payload).__name__}, expected a dict)"
        )
    return payload


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
