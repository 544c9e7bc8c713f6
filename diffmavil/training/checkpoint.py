"""Checkpoint files: verified by a checksum, loaded weights-only, recovered on resume.

- **Weights only**: every checkpoint is read with ``torch.load(weights_only=True)``. A
  checkpoint holds tensors and plain containers (dicts, lists, numbers, strings); a file
  that needs more (a pickled class or function, which would run code while unpickling) is
  refused with one line naming the file, and nothing in it is executed.
- **Checksum**: ``save_checkpoint`` stores a SHA-256 of the payload's contents (every
  tensor's dtype, shape and bytes, every key and plain value) under ``"checksum"``;
  ``load_verified`` recomputes it and refuses a file without one or whose contents differ
  (a flipped byte that still unpickles would otherwise resume from wrong weights).
- **Previous kept**: a new checkpoint is written to a temporary file, read back and
  verified; only then is the current file kept as ``<name>.prev.pt`` and replaced by the
  new one (atomic renames: ``<name>`` never goes missing, a crash at any point leaves a
  good checkpoint). The previous one is removed once the run has completed.
- **Recovery**: ``recover_checkpoint`` returns the newest file that loads and verifies;
  a file that fails is moved aside (``<name>.bad-<n>``) with a one-line warning, so the run
  resumes from the previous one or starts over instead of failing.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import sys
from pathlib import Path
from typing import Any

from diffmavil.atomic import atomic_write

CHECKSUM_KEY = "checksum"
CHECKSUM_ALGORITHM = "sha256"


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


def previous_path(path: str | Path) -> Path:
    """Where the previous good checkpoint of ``path`` is kept: checkpoint.pt -> .prev.pt."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def payload_digest(payload: Any) -> str:
    """SHA-256 (hex) of a payload's contents: keys, plain values, tensor dtypes, shapes
    and bytes, walked in a fixed order (dict keys sorted)."""
    digest = hashlib.sha256()
    _feed(digest, payload)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{flat.dtype}{tuple(value.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}|".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}|".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, (str, bytes)):
        raw = value.encode() if isinstance(value, str) else value
        digest.update(f"{'S' if isinstance(value, str) else 'B'}{len(raw)}|".encode())
        digest.update(raw)
    elif value is None or isinstance(value, (bool, int)):
        digest.update(f"{type(value).__name__}:{value}|".encode())
    elif isinstance(value, float):
        digest.update(f"float:{value.hex()}|".encode())
    else:
        raise TypeError(f"cannot checksum a {type(value).__name__} in a checkpoint")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with its checksum atomically; the file is read back and verified
    before it replaces ``path``, whose previous content is kept at ``previous_path``."""
    import torch

    path = Path(path)
    stamped = {
        **payload,
        CHECKSUM_KEY: {"algorithm": CHECKSUM_ALGORITHM, "digest": payload_digest(payload)},
    }
    return atomic_write(
        path,
        lambda handle: torch.save(stamped, handle),
        verify=lambda written: load_verified(written, name=path),
        keep_previous=previous_path(path),
    )


def load_verified(
    path: str | Path, map_location: Any = "cpu", *, name: str | Path | None = None
) -> dict[str, Any]:
    """The payload of a checkpoint whose checksum matches its contents (checksum removed).

    Raises ``CheckpointError`` (one line naming the file, or ``name`` when given) for a
    file that is unsafe, unreadable, without a checksum or whose contents differ from it.
    """
    shown = name or path
    try:
        payload = load_checkpoint(path, map_location)
    except CheckpointError as error:
        raise type(error)(str(error).replace(str(path), str(shown), 1)) from None
    stamp = payload.pop(CHECKSUM_KEY, None)
    if not isinstance(stamp, dict) or stamp.get("algorithm") != CHECKSUM_ALGORITHM:
        raise CorruptCheckpoint(
            f"{shown}: no {CHECKSUM_ALGORITHM} checksum (mandatory; written by an older "
            "diffbench or another program)"
        )
    if payload_digest(payload) != stamp.get("digest"):
        raise CorruptCheckpoint(f"{shown}: checksum mismatch (contents changed after writing)")
    return payload


def recover_checkpoint(
    path: str | Path, map_location: Any = "cpu", *, move_aside: bool = True
) -> tuple[dict[str, Any] | None, list[Path]]:
    """(payload, files moved aside): the newest of ``path`` and its previous checkpoint
    that loads and verifies, or None (start over) when neither does.

    A file that fails is moved aside to ``<name>.bad-<n>`` (when ``move_aside``; other
    ranks of a distributed run only skip it) and named in a one-line warning on stderr.
    """
    path = Path(path)
    candidates = [c for c in (path, previous_path(path)) if c.exists()]
    discarded: list[Path] = []
    for index, candidate in enumerate(candidates):
        try:
            return load_verified(candidate, map_location), discarded
        except CheckpointError as error:
            if not move_aside:
                continue
            aside = _move_aside(candidate)
            discarded.append(aside)
            following = candidates[index + 1 :]
            then = f"trying {following[0].name}" if following else "starting over"
            print(f"warning: {error}; moved aside to {aside.name}; {then}", file=sys.stderr)
    return None, discarded


def resume_checkpoint(
    path: str | Path, map_location: Any, group: Any
) -> tuple[dict[str, Any] | None, list[Path]]:
    """``recover_checkpoint`` in every rank of a (possibly distributed) run: the main rank
    moves bad files aside first, then the other ranks pick the same file it picked."""
    from diffmavil.training import distributed

    if not group.is_main:
        distributed.barrier()
    recovered = recover_checkpoint(path, map_location, move_aside=group.is_main)
    if group.is_main:
        distributed.barrier()
    return recovered


def discard_previous(path: str | Path) -> None:
    """Remove the previous checkpoint kept beside ``path`` (once the run has completed)."""
    previous_path(path).unlink(missing_ok=True)


def _move_aside(path: Path) -> Path:
    number = 1
    while (aside := path.with_name(f"{path.name}.bad-{number}")).exists():
        number += 1
    os.replace(path, aside)
    return aside
