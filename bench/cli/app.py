"""The ``diffbench`` command line (typer). Heavy imports live inside command bodies so
that ``--help`` is instant.

Every command runs under one error handler (``bench.errors.handle_error``), installed in
the root command's ``main``: bad input is one line and exit code 2; an unexpected error is
one line and the path of the file holding its traceback (``DIFFBENCH_TRACEBACK=1`` prints
it).
"""

from __future__ import annotations

import inspect
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup


class DiffbenchGroup(TyperGroup):
    """The root command: runs a command and hands whatever it raises to the one handler."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        from bench.errors import handle_error

        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
            code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        except BaseException as error:  # the one place errors become messages
            if isinstance(error, SystemExit):
                raise
            code = handle_error(error)
        if not standalone_mode:
            return code
        sys.exit(code)


app = typer.Typer(
    name="diffbench",
    cls=DiffbenchGroup,
    help="Efficiency benchmarking and ablations for DiffMAViL (arXiv 2310.03937).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from diffmavil import __version__

        typer.echo(f"diffbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Efficiency benchmarking and ablations for DiffMAViL (arXiv 2310.03937)."""


def _register_commands() -> None:
    """Each command lives in its own module; their heavy imports stay inside the bodies."""
    from bench.cli.ablate import ablate_command
    from bench.cli.check import check_command
    from bench.cli.data import data_app
    from bench.cli.finetune import finetune_command
    from bench.cli.flops import flops_command
    from bench.cli.info import info_command
    from bench.cli.migrate import migrate_command
    from bench.cli.preset_search import preset_search_command
    from bench.cli.pretrain import pretrain_command
    from bench.cli.profile import profile_command
    from bench.cli.report import report_command
    from bench.cli.time import time_command

    for name, command in (
        ("info", info_command),
        ("flops", flops_command),
        ("time", time_command),
        ("profile", profile_command),
        ("pretrain", pretrain_command),
        ("finetune", finetune_command),
        ("ablate", ablate_command),
        ("report", report_command),
        ("preset-search", preset_search_command),
        ("migrate", migrate_command),
        ("check", check_command),
    ):
        app.command(name, help=help_paragraphs(command.__doc__))(command)
    app.add_typer(data_app, name="data")


def help_paragraphs(docstring: str | None) -> str | None:
    """A docstring as command help: the source's line breaks inside a paragraph are joined
    (the help is re-wrapped to the terminal), paragraphs stay apart."""
    if not docstring:
        return None
    text = inspect.cleandoc(docstring)
    return "\n\n".join(" ".join(p.split("\n")) for p in text.split("\n\n"))


_register_commands()


def main() -> None:
    """The console script: ``app()`` runs ``DiffbenchGroup.main`` (the error handler)."""
    app()


if __name__ == "__main__":
    main()
