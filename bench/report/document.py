"""A report's structure: sections holding prose, tables (``bench.report.tables``), figures
and notes for what was skipped."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from bench.report.tables import Table
from bench.schema import DesignChoice


@dataclass
class Plot:
    """One figure: PNG bytes and the table behind it (written as CSV beside the PNG)."""

    key: str
    title: str
    caption: str
    png: bytes
    data: list[dict[str, Any]]

    @property
    def png_name(self) -> str:
        return f"{self.key}.png"

    @property
    def csv_name(self) -> str:
        return f"{self.key}.csv"


@dataclass
class Section:
    key: str
    title: str
    intro: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "plot title: reason"
    items: list[DesignChoice] = field(default_factory=list)  # our design choices, labelled


def add_plot(section: Section, title: str, result: Plot | str, caption: str = "") -> None:
    """Add a figure, or (when ``result`` is the reason it could not be drawn) a skipped note."""
    if isinstance(result, str):
        section.skipped.append(f"{title}: skipped ({result})")
    else:
        result.caption = caption
        section.plots.append(result)


@dataclass(frozen=True)
class ReportContext:
    """What the templates (and the LaTeX rendering) render: the sections and a header."""

    title: str
    source: str  # the inputs as given
    generated: str  # date
    command: str
    sections: list[Section]
    runs_count: int

    def template_variables(self) -> dict[str, Any]:
        """The context as the templates' variables (the sections not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
