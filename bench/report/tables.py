"""The one table model of diffbench and its four renderings: the terminal (rich), GitHub
markdown, HTML and LaTeX (booktabs).

A ``Table`` holds pre-formatted cells (the same strings in every format, with the inline
markdown the reports use: `code` and **bold**) and the raw values behind them (``data``,
written as CSV). Commands print tables with ``print_tables``; reports render them with
``to_markdown``, ``to_html`` and ``to_latex``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

DASH = "—"


@dataclass
class Column:
    label: str
    align: str = "right"  # left | right


@dataclass
class TableRow:
    cells: list[str]
    css: str = ""  # baseline | failed | matched | control ...


@dataclass
class Table:
    """A table: column labels, rows of pre-formatted cells, notes under it, and the raw
    values behind it (``data``, one dict per row, written as CSV)."""

    key: str
    title: str
    columns: list[Column]
    rows: list[TableRow]
    css: str = ""
    notes: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        key: str,
        title: str,
        columns: Sequence[Column | str],
        rows: Iterable[Sequence[Any] | TableRow],
        **extra: Any,
    ) -> Table:
        """Build from labels (``"name"`` right-aligned, ``"<name"`` left-aligned) and plain
        cell sequences (converted with ``str``; None becomes a dash)."""
        cols = [
            c if isinstance(c, Column) else Column(c.removeprefix("<"), _align(c)) for c in columns
        ]
        built = [
            r if isinstance(r, TableRow) else TableRow([DASH if v is None else str(v) for v in r])
            for r in rows
        ]
        return cls(key, title, cols, built, **extra)

    def drop_empty_columns(self, keep: int = 1) -> Table:
        """Remove columns (after the first ``keep``) whose every cell is missing."""
        wanted = [
            i
            for i in range(len(self.columns))
            if i < keep or any(row.cells[i] not in ("", DASH) for row in self.rows)
        ]
        self.columns = [self.columns[i] for i in wanted]
        for row in self.rows:
            row.cells = [row.cells[i] for i in wanted]
        return self


def _align(label: str) -> str:
    return "left" if label.startswith("<") else "right"


# ------------------------------------------------------------------------ inline markup
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def plain(text: Any) -> str:
    """Cell text without its inline markdown (for the terminal)."""
    text = "" if text is None else str(text)
    return _BOLD.sub(r"\1", _CODE.sub(r"\1", text))


def inline_html(text: Any) -> str:
    """Escaped HTML with `code` and **bold** as tags."""
    escaped = html.escape("" if text is None else str(text), quote=True)
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    return _BOLD.sub(r"<strong>\1</strong>", escaped)


def md_cell(value: Any) -> str:
    """A markdown table cell: pipes escaped, line breaks flattened."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


# ---------------------------------------------------------------------------- markdown
def to_markdown(table: Table) -> str:
    """A bold title, a pipe table (aligned columns) and the notes in italics."""
    lines = [f"**{table.title}**", ""]
    lines.append("|" + "".join(f" {md_cell(c.label)} |" for c in table.columns))
    lines.append(
        "|" + "".join(" ---: |" if c.align == "right" else " :--- |" for c in table.columns)
    )
    lines += ["|" + "".join(f" {md_cell(cell)} |" for cell in row.cells) for row in table.rows]
    for note in table.notes:
        lines += ["", f"_{note}_"]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------- HTML
def to_html(table: Table, anchor: str = "") -> str:
    """A scrollable ``<table>`` with a caption, aligned cells, row classes and notes."""
    align = [c.align for c in table.columns]
    head = "".join(f'<th class="{c.align}">{inline_html(c.label)}</th>' for c in table.columns)
    body = []
    for row in table.rows:
        css = f' class="{html.escape(row.css)}"' if row.css else ""
        cells = "".join(
            f'<td class="{a}">{inline_html(cell)}</td>'
            for a, cell in zip(align, row.cells, strict=True)
        )
        body.append(f"<tr{css}>{cells}</tr>")
    ident = f' id="{html.escape(anchor)}"' if anchor else ""
    parts = [
        '<div class="scroll">',
        f'<table class="{html.escape(table.css)}"{ident}>',
        f"<caption>{inline_html(table.title)}</caption>",
        f"<thead><tr>{head}</tr></thead>",
        "<tbody>",
        *body,
        "</tbody>",
        "</table>",
        "</div>",
    ]
    parts += [f'<p class="note">{inline_html(note)}</p>' for note in table.notes]
    return "\n".join(parts)


# ------------------------------------------------------------------------------- LaTeX
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_UNICODE = {
    "−": "$-$",
    "±": r"$\pm$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "×": r"$\times$",
    "→": r"$\to$",
    "·": r"$\cdot$",
    "⋯": r"$\cdots$",
    "…": r"\dots{}",
    "—": "---",
    "–": "--",
    "†": r"\dag{}",
    "Δ": r"$\Delta$",
    "³": r"$^3$",
    "²": r"$^2$",
    "“": "``",
    "”": "''",
    "’": "'",
    "✓": r"$\checkmark$",
}


def latex_escape(text: Any) -> str:
    """Text safe inside a LaTeX document: specials escaped, the report's Unicode symbols as
    LaTeX, `code` as \\texttt and **bold** as \\textbf."""
    text = "" if text is None else str(text)
    out = []
    for piece, kind in _markup_pieces(text):
        escaped = "".join(_LATEX_SPECIAL.get(ch, _LATEX_UNICODE.get(ch, ch)) for ch in piece)
        out.append({"code": r"\texttt{%s}", "bold": r"\textbf{%s}"}.get(kind, "%s") % escaped)
    return "".join(out)


def _markup_pieces(text: str) -> list[tuple[str, str]]:
    """Split text into (piece, kind) with kind plain | code | bold."""
    pieces: list[tuple[str, str]] = []
    pattern = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            pieces.append((text[position : match.start()], "plain"))
        code, bold = match.groups()
        pieces.append((code, "code") if code is not None else (bold, "bold"))
        position = match.end()
    if position < len(text):
        pieces.append((text[position:], "plain"))
    return pieces


_LATEX_WRAP_AT = 40  # a left-aligned column with a longer cell becomes a wrapping p-column


def _latex_column(table: Table, index: int) -> str:
    column = table.columns[index]
    if column.align == "right":
        return "r"
    longest = max((len(row.cells[index]) for row in table.rows), default=0)
    if longest > _LATEX_WRAP_AT:
        return r">{\raggedright\arraybackslash}p{0.3\linewidth}"
    return "l"


def to_latex(table: Table, label: str = "") -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs,array}``): caption,
    ``\\toprule``/``\\midrule``/``\\bottomrule``, long text in wrapping columns, notes
    in a footnote-size paragraph."""
    spec = "".join(_latex_column(table, i) for i in range(len(table.columns)))
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_escape(table.title)}}}",
    ]
    if label:
        lines.append(rf"\label{{tab:{label}}}")
    lines += [
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(c.label) for c in table.columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(latex_escape(cell) for cell in row.cells) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        notes = " ".join(latex_escape(n) for n in table.notes)
        lines.append(rf"\par\smallskip\parbox{{\linewidth}}{{\footnotesize {notes}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- terminal
_MAX_PACKED_WIDTH = 24  # a wider cell wraps at its spaces rather than widening its column
_MAX_HEADER_WIDTH = 14  # a longer header wraps between its words


def _column_width(table: Table, index: int) -> int:
    """The width a column asks for: its widest cell and its header on one line (long ones
    capped: they wrap at spaces), never less than the longest word of its header."""
    label = table.columns[index].label
    label_word = max((len(w) for w in label.split()), default=1)
    cell = max((len(plain(r.cells[index])) for r in table.rows), default=0)
    return max(label_word, min(len(label), _MAX_HEADER_WIDTH), min(cell, _MAX_PACKED_WIDTH), 1)


def column_groups(table: Table, width: int) -> list[list[int]]:
    """Split the columns into groups that each fit ``width`` characters; the first column
    (the row's name) starts every group."""
    widths = [_column_width(table, i) + 3 for i in range(len(table.columns))]  # pad + rule
    budget = width - 4
    groups: list[list[int]] = [[0]]
    used = widths[0]
    for index in range(1, len(widths)):
        if used + widths[index] > budget and len(groups[-1]) > 1:
            groups.append([0])
            used = widths[0]
        groups[-1].append(index)
        used += widths[index]
    return groups


def to_rich(table: Table, width: int = 80) -> list[Any]:
    """rich tables that fit ``width`` columns: when the whole table is too wide, its
    columns are split over several tables, each led by the first column. Cells wrap at
    spaces and fold long words; no header is ever cut short."""
    from rich import box
    from rich.table import Table as RichTable

    groups = column_groups(table, width)
    rendered = []
    for number, group in enumerate(groups, start=1):
        suffix = f" ({number}/{len(groups)})" if len(groups) > 1 else ""
        rich_table = RichTable(
            title=plain(table.title) + suffix,
            box=box.HEAVY_HEAD,
            caption=" ".join(plain(n) for n in table.notes) if number == len(groups) else None,
            caption_justify="left",
        )
        for index in group:
            column = table.columns[index]
            rich_table.add_column(
                plain(column.label),
                justify="left" if column.align == "left" else "right",
                overflow="fold",
                min_width=max((len(w) for w in column.label.split()), default=1),
            )
        for row in table.rows:
            rich_table.add_row(*(plain(row.cells[i]) for i in group))
        rendered.append(rich_table)
    return rendered


def print_tables(tables: Iterable[Table], console: Any = None) -> None:
    """Print tables on the terminal (or a given rich Console), each fitted to its width."""
    from rich.console import Console

    console = console if console is not None else Console()
    for table in tables:
        for rich_table in to_rich(table, console.width):
            console.print(rich_table)
