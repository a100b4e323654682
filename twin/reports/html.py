"""Self-contained HTML reports from Jinja2 templates (``twin/reports/templates/``).

Every report (run, replications, comparison, sweep, validation, sensitivity, allocation) extends
one base template: an executive summary in plain sentences on top, then sections of tables,
figures and interactive maps. Figures are embedded (PNG as base64), the table sorter
(tablesort, MIT, vendored under ``templates/vendor/``) and any plotly map are inlined, so the
file opens from an email or a shared drive, offline, without the files beside it.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd
from markupsafe import Markup

from twin.reports.formatting import label, measure, show

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

LONG_TABLE_ROWS = 25  # longer tables scroll inside a box with a sticky header


@dataclass(frozen=True, slots=True)
class Cell:
    """One table cell: the text shown and the raw value it sorts by."""

    text: str
    sort: str | None = None
    tone: str = ""  # "good" / "bad" / "": a verdict's colour


@dataclass(slots=True)
class Table:
    """A table for people: labelled columns with units, formatted cells, no index column."""

    caption: str
    headers: list[str]
    rows: list[list[Cell]]
    numeric: list[bool]
    note: str = ""

    @property
    def long(self) -> bool:
        return len(self.rows) > LONG_TABLE_ROWS


@dataclass(frozen=True, slots=True)
class Figure:
    """An embedded PNG figure."""

    caption: str
    data_uri: str
    alt: str


@dataclass(frozen=True, slots=True)
class Interactive:
    """Ready HTML (an offline plotly map with its library inlined)."""

    caption: str
    markup: str


@dataclass(slots=True)
class Section:
    """A heading, an optional paragraph, and tables, figures or interactive parts."""

    heading: str
    items: list[Table | Figure | Interactive] = field(default_factory=list)
    text: str = ""


TONES = {"better": "good", "worse": "bad", "yes": "good", "no": "bad", "MET": "good"}


def _cell(column: str, value: Any, *, sign: bool = False, kpi: str | None = None) -> Cell:
    name = kpi or column
    text = show(name, value, sign=sign)
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    sort = None
    if numeric and pd.notna(value):
        sort = repr(float(value))
    return Cell(text, sort, TONES.get(text, ""))


def frame_table(
    frame: pd.DataFrame,
    caption: str,
    *,
    columns: Sequence[str] | None = None,
    signed: Iterable[str] = (),
    note: str = "",
) -> Table:
    """A table of `frame`'s `columns` (default all; the index is dropped: reset it first to keep
    it), each labelled in words with its unit and formatted by its kind (`formatting.show`)."""
    cols = list(columns or frame.columns)
    signed = set(signed)
    rows = [
        [_cell(c, v, sign=c in signed) for c, v in zip(cols, values, strict=True)]
        for values in frame[cols].itertuples(index=False, name=None)
    ]
    numeric = [
        measure(c).kind != "text" and pd.api.types.is_numeric_dtype(frame[c].dtype)
        and not pd.api.types.is_bool_dtype(frame[c].dtype)
        for c in cols
    ]  # fmt: skip
    return Table(caption, [label(c, unit=True) for c in cols], rows, numeric, note)


def kpi_table(
    frame: pd.DataFrame,
    caption: str,
    *,
    columns: Sequence[str],
    signed: Iterable[str] = (),
    extra: Sequence[str] = (),
    note: str = "",
) -> Table:
    """A table with one row per KPI (`frame`'s index): the KPI in words with its unit, then
    `columns` formatted as that KPI (hours, %, km...), then `extra` columns as they are."""
    signed = set(signed)
    rows = []
    for kpi, row in frame.iterrows():
        name = str(kpi)
        cells = [Cell(label(name, unit=True))]
        cells += [_cell(c, row[c], sign=c in signed, kpi=name) for c in columns]
        cells += [_cell(c, row[c]) for c in extra]
        rows.append(cells)
    headers = ["KPI", *(label(c) for c in columns), *(label(c) for c in extra)]
    numeric = [False, *([True] * len(columns)), *(False for _ in extra)]
    return Table(caption, headers, rows, numeric, note)


def figure(path: Path, caption: str = "") -> Figure:
    """Embed the PNG at `path`."""
    data = base64.b64encode(path.read_bytes()).decode()
    return Figure(caption, f"data:image/png;base64,{data}", caption or path.stem)


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("twin.reports", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["vendor"] = _vendor
    return env


def _vendor(name: str) -> Markup:
    """A vendored asset's text, inlined as it is (our own packaged file, not user input)."""
    text = resources.files("twin.reports").joinpath("templates", "vendor", name).read_text("utf-8")
    return Markup(text.replace("</script", "<\\/script"))


def render(
    template: str,
    out: Path,
    *,
    title: str,
    summary: Sequence[str],
    sections: Sequence[Section],
    note: str = "",
    **context: Any,
) -> Path:
    """Render ``templates/<template>.html.j2`` to `out` and return it.

    Parameters
    ----------
    template
        ``run``, ``replications``, ``comparison``, ``sweep``, ``validation``, ``sensitivity`` or
        ``allocation``.
    summary
        The executive summary: plain sentences, shown first.
    sections
        The body, in order.
    note
        How the numbers were made (replications, common random numbers...), shown under the
        title.
    """
    page = _environment().get_template(f"{template}.html.j2")
    text = page.render(
        title=title,
        summary=list(summary),
        sections=list(sections),
        note=note,
        generated=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        interactive=any(isinstance(i, Interactive) for s in sections for i in s.items),
        **context,
    )
    out.write_text(text, encoding="utf-8")
    return out


def markup(text: str) -> Markup:
    """Trusted HTML made by a maintained library (plotly), kept unescaped."""
    return Markup(text)
