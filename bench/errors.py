"""Errors of the CLI and the one handler that turns them into messages and exit codes.

``handle_error`` is called by ``bench.cli.app``'s root command (every command, ``data`` and
``info`` included, runs under it):

- bad input (``BadInput``, ``ConfigError``, ``DataError``, a pydantic ``ValidationError``,
  a missing file, a rejected option value): ``error: <one line>``, exit code 2;
- anything else: ``error: unexpected <Type>: <one line> (full traceback: <file>)``, exit
  code 1; the traceback file is written atomically under ``DIFFBENCH_TRACEBACK_DIR`` (default:
  the system temp directory). ``DIFFBENCH_TRACEBACK=1`` prints the full traceback instead.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import typer


def _click_exception_modules() -> list:
    """The click exception modules a typer command may raise from: typer's own copy of
    click (typer >= 0.20, which no longer installs click) and click itself (older typer
    depends on it; another package may install it beside a newer typer)."""
    modules = []
    try:
        from typer._click import exceptions as vendored

        modules.append(vendored)
    except ImportError:  # pragma: no cover - older typer uses click itself
        pass
    try:
        from click import exceptions as installed

        modules.append(installed)
    except ImportError:  # typer >= 0.20 without click installed
        pass
    return modules


_CLICK_EXCEPTIONS = _click_exception_modules()


def _classes(name: str, *extra: type) -> tuple[type, ...]:
    """``name`` from every click exception module that has it, plus ``extra``."""
    found = [getattr(m, name) for m in _CLICK_EXCEPTIONS if hasattr(m, name)]
    return (*found, *extra)


_EXIT = _classes("Exit", typer.Exit)
_ABORT = _classes("Abort", typer.Abort, KeyboardInterrupt)
_NO_ARGS = _classes("NoArgsIsHelpError")
_USAGE = _classes("ClickException")

TRACEBACK_ENV = "DIFFBENCH_TRACEBACK"
TRACEBACK_DIR_ENV = "DIFFBENCH_TRACEBACK_DIR"
BAD_INPUT_EXIT = 2
UNEXPECTED_EXIT = 1


class BadInput(ValueError):
    """Invalid user input: the message names the bad value and what is allowed."""


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _bad_input_types() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from diffmavil.config import ConfigError
    from diffmavil.data import DataError
    from diffmavil.training.checkpoint import CheckpointError

    return (BadInput, ConfigError, DataError, CheckpointError, ValidationError, FileNotFoundError)


def first_line(error: BaseException | str) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _describe_validation(error: BaseException) -> str:
    from pydantic import ValidationError

    from diffmavil.config import format_validation_error

    if isinstance(error, ValidationError):
        return format_validation_error(error)
    return first_line(error)


def write_traceback(error: BaseException) -> Path:
    """The full traceback of ``error`` in a new file (atomic); returns its path."""
    from diffmavil.atomic import atomic_write_text

    folder = Path(os.environ.get(TRACEBACK_DIR_ENV) or tempfile.gettempdir())
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"diffbench-traceback-{stamp}-{os.getpid()}.txt"
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    atomic_write_text(path, f"diffbench {' '.join(sys.argv[1:])}\n{text}")
    return path


def handle_error(error: BaseException) -> int:
    """Print ``error`` as one line on stderr; return the exit code."""
    if isinstance(error, _EXIT):
        return error.exit_code
    if isinstance(error, _ABORT):
        typer.echo("error: interrupted", err=True)
        return 130
    if isinstance(error, _NO_ARGS):  # the help is already printed
        return BAD_INPUT_EXIT
    if isinstance(error, _USAGE):  # a rejected value, a missing argument
        message = first_line(error.format_message()).replace("Value error, ", "")
        typer.echo(f"error: {message}", err=True)
        return error.exit_code
    verbose = bool(os.environ.get(TRACEBACK_ENV))
    if isinstance(error, _bad_input_types()):
        if verbose:
            traceback.print_exception(type(error), error, error.__traceback__)
        typer.echo(f"error: {first_line(_describe_validation(error))}", err=True)
        return BAD_INPUT_EXIT
    what = f"unexpected {type(error).__name__}"
    if _is_compile_error(error):  # never a silent fallback to eager: say what failed
        what = f"torch.compile failed ({type(error).__name__}; run without --compile)"
    if verbose:
        traceback.print_exception(type(error), error, error.__traceback__)
        typer.echo(f"error: {what}: {first_line(error)}", err=True)
        return UNEXPECTED_EXIT
    try:
        where = f"full traceback: {write_traceback(error)}"
    except OSError as write_error:
        where = f"traceback not written: {write_error}; set {TRACEBACK_ENV}=1 to print it"
    typer.echo(f"error: {what}: {first_line(error)} ({where})", err=True)
    return UNEXPECTED_EXIT


def _is_compile_error(error: BaseException) -> bool:
    """A torch.compile (dynamo or inductor) failure."""
    return (type(error).__module__ or "").startswith(("torch._dynamo", "torch._inductor"))
