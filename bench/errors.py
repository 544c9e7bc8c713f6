"""User-facing errors: one line, exit code 2 from the CLI."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


class BadInput(ValueError):
    """Invalid user input: the message names the bad value and what is allowed."""


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` to stderr and return an Exit(2) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def user_errors(function: F) -> F:
    """Turn known input errors into a one-line message and exit code 2.

    Set DIFFBENCH_TRACEBACK=1 to see the full traceback instead.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from diffmavil.config import ConfigError

        known: tuple[type[BaseException], ...] = (BadInput, ConfigError, FileNotFoundError)
        try:
            from diffmavil.data import DataError

            known = (*known, DataError)
        except ImportError:
            pass
        from diffmavil.training.checkpoint import CheckpointError

        known = (*known, CheckpointError)
        try:
            return function(*args, **kwargs)
        except known as error:
            if os.environ.get("DIFFBENCH_TRACEBACK"):
                raise
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise fail(message) from None

    return wrapper  # type: ignore[return-value]


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
