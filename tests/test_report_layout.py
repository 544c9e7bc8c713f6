"""Reports lead with what their input is about; the paper's headline only where a grid
compares recipes, its sensitivity sweep further down; LaTeX (booktabs) export end to end."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from bench.ablate.store import write_results
from bench.cli.app import app
from bench.report.render import render_report
from diffmavil.environment import environment
from tests.test_report import _md_table, _record, _time_payload, build_results

PAPER = "The paper's headline vs our base-size figures"
SENSITIVITY = "Sensitivity of the base-size saving to our choices"


def _headings(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.M)


def test_a_timing_report_starts_with_the_timing(tmp_path):
    source = tmp_path / "time.json"
    source.write_text(json.dumps(_time_payload()))
    text = render_report(source, ("md",), tmp_path / "out")["md"].read_text()
    headings = _headings(text)
    assert headings[0].startswith("Wall-clock per step and per component")
    assert headings[-1] == "Environment"
    assert PAPER not in headings and SENSITIVITY not in headings
    assert "−32%" not in text
    # the first table of the report is the train step
    first_table = re.search(r"^\*\*(.+)\*\*$", text, flags=re.M).group(1)
    assert first_table == "Train step (forward, backward, optimizer) per variant"


def test_a_grid_comparing_recipes_leads_with_its_rows_then_the_headline(tmp_path):
    results = build_results(tmp_path / "results")
    text = render_report(results, ("md",), tmp_path / "out")["md"].read_text()
    headings = _headings(text)
    assert headings[0] == "Ablation grid `fixture`"
    assert headings.index(PAPER) < headings.index(SENSITIVITY) < headings.index("Environment")
    paper = text.split(f"## {PAPER}", 1)[1].split("\n## ", 1)[0]
    assert len(_md_table(paper, "Pre-training saving of DiffMAViL vs MAViL")) == 3  # compact


def test_a_grid_of_one_recipe_has_no_paper_headline(tmp_path):
    out = tmp_path / "one-recipe"
    records = [
        _record("pretrained", s, flops=1e12, wall=100, accuracy=0.8, baseline=True)
        for s in range(2)
    ]
    control = _record("control: fbank", 0, accuracy=0.5, kind="control", variant="cross-attn")
    records.append(control)
    meta = {"grid": "gain", "seeds": [0, 1], "baseline": "pretrained", "flops_only": False}
    write_results(out, records, {**meta, "environment": environment("cpu")}, complete=True)
    text = render_report(out, ("md",), tmp_path / "rendered")["md"].read_text()
    headings = _headings(text)
    assert headings == ["Ablation grid `gain`", "Environment"]


def _balanced(tex: str) -> bool:
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{(\w+)\}", tex):
        if kind == "begin":
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def test_latex_export_from_the_cli(tmp_path):
    results = build_results(tmp_path / "results")
    out = tmp_path / "tex"
    result = CliRunner().invoke(
        app, ["report", str(results), "--format", "latex,md", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    tex = (out / "report.tex").read_text()
    markdown = (out / "report.md").read_text()
    assert tex.startswith("\\documentclass") and "\\usepackage{booktabs}" in tex
    assert _balanced(tex)
    # every table of the markdown report is a booktabs table in the LaTeX one
    md_tables = re.findall(r"^\*\*(.+)\*\*$", markdown, flags=re.M)
    assert tex.count("\\begin{tabular}") == len(md_tables) > 3
    assert tex.count("\\toprule") == tex.count("\\midrule") == tex.count("\\bottomrule")
    # a data row as in the markdown, escaped: the compute-matched control and its deltas
    assert "mavil-matched (compute-matched to diffmavil)" in tex
    assert "\\section*{Ablation grid \\texttt{fixture}}" in tex
    # figures are the PNGs written beside it
    for png in re.findall(r"\\includegraphics\[[^]]*\]\{([^}]+)\}", tex):
        assert (out / png).exists(), png
    # a bare % would comment out the rest of its line; the report has many percentages
    body = tex.split("\\begin{document}", 1)[1]
    assert "\\%" in body and not re.search(r"(?<!\\)%", body)


def test_cli_lists_latex_among_formats():
    result = CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "200"})
    assert "latex" in result.output
