"""The LaTeX rendering of a report (``diffbench report --format latex``): one standalone
``report.tex`` (article class, booktabs tables, figures from the PNGs beside it) whose
tables can also be copied into a paper as they are."""

from __future__ import annotations

from bench.report.document import ReportContext, Section
from bench.report.tables import latex_escape, to_latex

PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[T1]{fontenc}
\usepackage[utf8]{inputenc}
\usepackage[margin=2cm,landscape]{geometry}
\usepackage{booktabs}
\usepackage{array}
\usepackage{graphicx}
\usepackage{amssymb}
\usepackage[hidelinks]{hyperref}
"""


def render_latex(context: ReportContext) -> str:
    """The whole document: title, one ``\\section*`` per report section, its paragraphs,
    booktabs tables, the labelled choices and the figures."""
    lines = [
        PREAMBLE,
        rf"\title{{{latex_escape(context.title)}}}",
        rf"\date{{{latex_escape(context.generated)}}}",
        r"\begin{document}",
        r"\maketitle",
        "",
        rf"Generated from \texttt{{{latex_escape(context.source)}}} by "
        rf"\texttt{{{latex_escape(context.command)}}}.",
        "",
    ]
    for section in context.sections:
        lines += _section(section)
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"


def _section(section: Section) -> list[str]:
    lines = [rf"\section*{{{latex_escape(section.title)}}}", ""]
    for paragraph in section.intro:
        lines += [latex_escape(paragraph), ""]
    for table in section.tables:
        lines += [to_latex(table, label=f"{section.key}-{table.key}"), ""]
    if section.items:
        lines += [
            r"Our design choices (not stated by the paper):",
            r"\begin{itemize}",
            *(
                rf"\item \textbf{{choice: {latex_escape(item.label)}}}: "
                f"{latex_escape(item.value)}"
                for item in section.items
            ),
            r"\end{itemize}",
            "",
        ]
    for plot in section.plots:
        caption = f"{latex_escape(plot.title)}. Data: \\texttt{{{latex_escape(plot.csv_name)}}}."
        lines += [
            r"\begin{figure}[htbp]",
            r"\centering",
            rf"\includegraphics[width=0.9\linewidth]{{{plot.png_name}}}",
            rf"\caption{{{caption}}}",
            r"\end{figure}",
            "",
        ]
    for note in section.skipped:
        lines += [latex_escape(note), ""]
    return lines
