"""`flops`, `time` and `ablate` print through the one table model: piped output (80 columns)
fits, and no header is cut short ("compon…", "backwa…")."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from bench.cli.app import app

WIDTH = 80


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return result.output


def _assert_fits_with_whole_headers(output: str, headers: list[str]) -> None:
    lines = output.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= WIDTH, output
    assert "…" not in output
    words = set(re.findall(r"[^\s│┃┏┓┗┛┡┩└┘━─┳┻╇┴┬┼]+", output))
    for header in headers:
        for word in header.split():
            assert word in words, f"header word {word!r} is cut or missing:\n{output}"


def test_flops_side_by_side_fits_80_columns():
    variants = ["mavil", "diff-self", "cross-attn", "cross-attn-both"]
    args = ["flops", "--counter", "analytic"]
    for variant in variants:
        args += ["--variant", variant]
    output = _invoke(args)
    headers = ["component", *variants, "Δ% vs mavil"]
    _assert_fits_with_whole_headers(output, headers)
    assert "video_decoder" in output and "-34.8%" in output


def test_flops_breakdown_fits_80_columns():
    output = _invoke(["flops", "--variant", "cross-attn", "--counter", "analytic"])
    headers = ["component", "params", "params %", "forward", "backward"]
    headers += ["forward+backward", "% FLOPs", "hw extra"]
    _assert_fits_with_whole_headers(output, headers)


def test_flops_sensitivity_fits_80_columns():
    args = ["flops", "--sensitivity", "--masking", "curriculum", "--batch", "adaptive"]
    output = _invoke([*args, "--samples", "2e5"])
    headers = ["assumption", "setting", "steps", "run FLOPs", "MAViL FLOPs", "saving"]
    _assert_fits_with_whole_headers(output, [*headers, "≥ paper's 32%"])


def test_ablate_dry_run_fits_80_columns():
    output = _invoke(["ablate", "--grid", "ablations/table2.yaml", "--dry-run"])
    headers = ["row", "differences from the base", "budget", "steps", "planned FLOPs"]
    _assert_fits_with_whole_headers(output, [*headers, "vs baseline", "run id (1st seed)"])
    for row in ("cross-attn+curriculum", "mavil@diffmavil-flops", "-22.7%"):
        assert row in output


def test_time_tables_fit_80_columns(one_thread):
    args = ["time", "--preset", "tiny", "--batch-size", "2", "--threads", "1"]
    args += ["--matmul-repeats", "1", "--repeats", "1", "--warmup", "0"]
    output = _invoke([*args, "--variant", "mavil", "--variant", "cross-attn"])
    headers = ["variant", "impl", "component", "phase", "median ms", "IQR ms", "GFLOP/s"]
    headers += ["util", "samples/s", "sum of components ms", "step fwd+bwd ms", "share"]
    headers += ["FLOP saving", "time saving", "time / FLOP"]  # the report's savings table
    _assert_fits_with_whole_headers(output, headers)
    assert "cross-attn vs mavil" in output


def _command_paths(command, prefix=()):
    if hasattr(command, "list_commands"):  # a group (typer may vendor its own click)
        context = command.context_class(command)
        for name in command.list_commands(context):
            yield from _command_paths(command.get_command(context, name), (*prefix, name))
    else:
        yield prefix


def test_help_text_has_no_stray_punctuation():
    """Help strings whose markup rich swallowed ("[default: x]") left "preset ." behind."""
    import typer

    paths = list(_command_paths(typer.main.get_command(app)))
    assert len(paths) >= 9
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        stray = re.findall(r"\S+ [.,;:](?=\s|$)", result.output)
        assert not stray, f"{' '.join(path)} --help: {stray}"


def test_help_paragraphs_are_rewrapped_not_broken_where_the_source_wraps():
    """A docstring's line breaks are the source's, not the terminal's: at 200 columns a
    paragraph of ``ablate --help`` is one line."""
    result = CliRunner().invoke(app, ["ablate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "a failed run is recorded with its reason and the grid goes on" in result.output
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "must agree exactly (2 FLOPs per multiply-add" in result.output
