"""The one error handler (``bench.cli.DiffbenchGroup`` -> ``bench.errors.handle_error``) and
the shared options every command uses."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from bench.cli.app import app

runner = CliRunner()

# one bad input per command: each must be one line on stderr and exit code 2
BAD_INPUTS = {
    "info": ["info", "--preset", "huge"],
    "flops": ["flops", "--variant", "crossattn"],
    "time": ["time", "--dtype", "fp16"],
    "profile": ["profile", "--batch-size", "0"],
    "pretrain": ["pretrain", "--masking", "sometimes"],
    "finetune": ["finetune", "--init", "pretrained"],
    "ablate": ["ablate", "--grid", "/no/such/grid.yaml"],
    "report": ["report", "/no/such/results"],
    "migrate": ["migrate", "/no/such/results"],
    "data stats": ["data", "stats", "bogus:/x", "--preset", "tiny"],
    "data show": ["data", "show", "synthetic", "--preset", "huge"],
    "unknown option": ["flops", "--frobnicate"],
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case):
    result = runner.invoke(app, BAD_INPUTS[case])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output


def _raise_unexpected(*args, **kwargs):
    raise RuntimeError("boom in the model library")


def test_unexpected_error_is_one_line_with_the_traceback_file(monkeypatch, tmp_path):
    import diffmavil

    monkeypatch.setattr(diffmavil, "make_config", _raise_unexpected)
    monkeypatch.setenv("DIFFBENCH_TRACEBACK_DIR", str(tmp_path))
    monkeypatch.delenv("DIFFBENCH_TRACEBACK", raising=False)
    result = runner.invoke(app, ["info", "--preset", "tiny"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: unexpected RuntimeError: boom in the model library")
    (written,) = tmp_path.glob("diffbench-traceback-*.txt")
    assert str(written) in lines[0]
    text = written.read_text()
    assert "Traceback (most recent call last)" in text and "_raise_unexpected" in text


def test_traceback_env_prints_the_full_traceback(monkeypatch, tmp_path):
    import diffmavil

    monkeypatch.setattr(diffmavil, "make_config", _raise_unexpected)
    monkeypatch.setenv("DIFFBENCH_TRACEBACK_DIR", str(tmp_path))
    monkeypatch.setenv("DIFFBENCH_TRACEBACK", "1")
    result = runner.invoke(app, ["info", "--preset", "tiny"])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "_raise_unexpected" in result.stderr
    assert not list(tmp_path.iterdir())  # printed, not written


def _commands(group, prefix: str = ""):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


COMMANDS = dict(_commands(typer.main.get_command(app)))


def test_every_command_is_mounted():
    assert set(COMMANDS) >= {
        "info",
        "flops",
        "time",
        "profile",
        "pretrain",
        "finetune",
        "ablate",
        "report",
        "migrate",
        "data stats",
        "data show",
    }


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_takes_format_and_clean_help(name):
    command = COMMANDS[name]
    options = {opt for param in command.params for opt in param.opts}
    assert "--format" in options, name
    assert "--json" not in options, name
    for param in command.params:
        text = getattr(param, "help", None) or ""
        assert not text.rstrip().endswith(" ."), (name, param.name, text)
        choices_by_hand = re.search(r"[a-z]\|[a-z]", text) and "`" not in text
        assert not choices_by_hand, (name, param.name, "choices belong in an enum")


def test_choices_are_listed_in_help():
    result = runner.invoke(app, ["pretrain", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for choice in ("fixed", "curriculum", "adaptive", "tokens", "flops", "cosine"):
        assert choice in result.output
    for panel in ("Model", "Schedules and budget", "Execution", "Output"):
        assert panel in result.output


def test_no_arguments_prints_help_and_exits_2():
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "pretrain" in result.output and "error" not in result.output


def test_version_exits_0():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("diffbench ")


def test_console_script_exit_codes():
    """``main()`` as the console script runs it: SystemExit carries the same exit codes."""
    import sys

    from bench.cli import app as cli

    argv = sys.argv
    try:
        for args, code in ((["info", "-p", "huge"], 2), (["--version"], 0)):
            sys.argv = ["diffbench", *args]
            with pytest.raises(SystemExit) as exit_info:
                cli.main()
            assert exit_info.value.code == code
    finally:
        sys.argv = argv
