"""The one table model and its renderings: terminal (fits 80 columns, no header cut short),
markdown, HTML and LaTeX booktabs."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from bench.report.tables import (
    Column,
    Table,
    TableRow,
    latex_escape,
    print_tables,
    to_html,
    to_latex,
    to_markdown,
)

LABELS = [
    "<variant",
    "<implementation",
    "<component",
    "<phase",
    "median ms",
    "IQR ms",
    "GFLOP/s",
    "utilisation",
    "samples/s",
    "speed ratio [95% CI]",
    "time saving / FLOP saving",
]


def _wide_table(rows: int = 4) -> Table:
    cells = [
        "cross-attn-both",
        "peer",
        "video_decoder",
        "backward",
        "1,234.5",
        "12.3",
        "123.4",
        "66%",
        "1.80",
        "1.063 [1.033, 1.088]",
        "1.21",
    ]
    return Table.of("wide", "Train step and components", LABELS, [cells] * rows)


def _terminal(table: Table, width: int = 80) -> str:
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    with console.capture() as capture:
        print_tables([table], console)
    return capture.get()


@pytest.mark.parametrize("width", [60, 80, 100, 140])
def test_a_wide_table_fits_the_terminal_with_every_header_whole(width):
    text = _terminal(_wide_table(), width)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    assert all(line.rstrip().endswith(("┓", "┃", "┩", "│", "┘")) for line in text.splitlines()[1:6])
    assert "…" not in text
    words = re.findall(r"\S+", text)
    for label in LABELS:
        for word in label.removeprefix("<").split():
            assert word in words, f"header word {word!r} cut or folded"
    # every cell value is printed whole as well
    for value in ("cross-attn-both", "video_decoder", "1.063", "[1.033,", "1.088]"):
        assert value in words


def test_a_table_that_fits_stays_one_table():
    narrow = Table.of("n", "Narrow", ["<component", "forward"], [["fusion", "8.03 G"]])
    text = _terminal(narrow)
    assert text.count("component") == 1 and "(1/" not in text


def test_a_split_table_repeats_the_row_names_in_every_part():
    text = _terminal(_wide_table(rows=2), width=80)
    parts = re.findall(r"\((\d)/(\d)\)", text)
    assert len(parts) >= 2 and parts[-1][0] == parts[-1][1]
    assert text.count("cross-attn-both") == 2 * len(parts)


def test_markdown_is_a_pipe_table_with_alignment():
    table = Table.of("t", "Title", ["<name", "value"], [["a|b", "1"], ["c", "2"]], notes=["n"])
    lines = to_markdown(table).splitlines()
    assert lines[0] == "**Title**"
    assert lines[2] == "| name | value |"
    assert lines[3] == "| :--- | ---: |"
    assert lines[4] == "| a\\|b | 1 |"
    assert lines[-1] == "_n_"


def test_html_escapes_and_marks_up():
    table = Table(
        "t",
        "A <b> title",
        [Column("name", "left"), Column("value")],
        [TableRow(["`code` & **bold**", "<1>"], css="baseline")],
    )
    out = to_html(table, "sec-t")
    assert '<table class="" id="sec-t">' in out
    assert "<caption>A &lt;b&gt; title</caption>" in out
    assert '<tr class="baseline">' in out
    assert "<code>code</code> &amp; <strong>bold</strong>" in out
    assert '<td class="right">&lt;1&gt;</td>' in out


def test_latex_escape_handles_specials_unicode_and_inline_markup():
    assert latex_escape("50% & $x_1$ #2") == r"50\% \& \$x\_1\$ \#2"
    assert latex_escape("−3.2% ± 1 ≥ 32%") == r"$-$3.2\% $\pm$ 1 $\geq$ 32\%"
    assert latex_escape("`cross_attn` **base**") == r"\texttt{cross\_attn} \textbf{base}"
    assert latex_escape("{a}~^\\") == r"\{a\}\textasciitilde{}\textasciicircum{}\textbackslash{}"


def test_latex_is_a_booktabs_table():
    long_text = "a long explanation that must wrap inside its column, not run off the page"
    table = Table.of(
        "headline",
        "Saving vs MAViL",
        ["<figure", "ours", "<how"],
        [["FLOPs", "−22.5%", long_text], ["wall_clock", "—", "n/a"]],
        notes=["50% of it"],
    )
    out = to_latex(table, label="paper-headline")
    assert out.startswith("\\begin{table}") and out.rstrip().endswith("\\end{table}")
    assert "\\caption{Saving vs MAViL}" in out and "\\label{tab:paper-headline}" in out
    spec = re.search(r"\\begin\{tabular\}\{(.*)\}\n", out).group(1)
    assert spec == r"lr>{\raggedright\arraybackslash}p{0.3\linewidth}"
    body = out[out.index("\\toprule") : out.index("\\bottomrule")]
    assert body.count("\\midrule") == 1
    assert body.count(r" \\") == 3  # header + 2 rows
    assert "wall\\_clock & --- & n/a \\\\" in out
    assert "FLOPs & $-$22.5\\% &" in out
    assert "{\\footnotesize 50\\% of it}" in out
    assert out.count("{") == out.count("}")
