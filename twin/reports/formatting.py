"""Numbers and names as a planner reads them: KPI labels in words, units, rounding, no "-0.0".

Every HTML table and plot label goes through here, so a KPI reads the same everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Measure:
    """How one quantity is shown: its name in words, its unit and its kind of number.

    Attributes
    ----------
    label
        The name in words ("mean resolution time").
    kind
        ``hours``, ``share`` (0..1, shown as %), ``count``, ``km``, ``idr``, ``number`` or
        ``text``.
    """

    label: str
    kind: str


MEASURES = {
    "mean_coordination_h": Measure("mean coordination time", "hours"),
    "mean_resolution_h": Measure("mean resolution time", "hours"),
    "mean_resolution_of_resolved_h": Measure("mean resolution of the resolved only", "hours"),
    "p50_resolution_h": Measure("median resolution time", "hours"),
    "p90_resolution_h": Measure("90th percentile of resolution time", "hours"),
    "p99_resolution_h": Measure("99th percentile of resolution time", "hours"),
    "mean_horizon_h": Measure("horizon of the means", "hours"),
    "share_coordinated_within_6h": Measure("coordinated within 6 hours", "share"),
    "share_resolved_within_7d": Measure("resolved within 7 days", "share"),
    "resolved_share": Measure("resolved", "share"),
    "censored_resolution_share": Measure("still open at the end (censored)", "share"),
    "censored_coordination_share": Measure("not coordinated at the end (censored)", "share"),
    "crew_utilisation": Measure("PPSU crew utilisation", "share"),
    "travel_km": Measure("distance ridden by crews", "km"),
    "reports_per_day": Measure("reports per day", "number"),
    "peak_day_reports": Measure("reports on the busiest day", "number"),
    "reports": Measure("reports", "count"),
    "reports_mean": Measure("reports (mean per replication)", "number"),
    "resolved": Measure("resolved reports", "count"),
    "open_at_end": Measure("still open at the end", "count"),
    "crews": Measure("PPSU crews", "count"),
    "rank": Measure("rank (1 = fastest)", "count"),
    "rank_mean": Measure("mean rank", "number"),
    "rank_low": Measure("rank, 2.5 %", "count"),
    "rank_high": Measure("rank, 97.5 %", "count"),
    "best_share": Measure("among the best 15", "share"),
    "worst_share": Measure("among the worst 15", "share"),
    "staff_cost_idr": Measure("staffing cost per month", "idr"),
    "staff_change": Measure("staff change (proposed minus today)", "count"),
    "desk_officers": Measure("desk officers", "count"),
    "agency_teams": Measure("agency teams", "count"),
    "ppsu_crews": Measure("PPSU crews", "count"),
    "desk_cost_idr": Measure("desk officers per month", "idr"),
    "agency_cost_idr": Measure("agency teams per month", "idr"),
    "ppsu_cost_idr": Measure("PPSU crews per month", "idr"),
    "proposed_desks": Measure("desk officers proposed", "count"),
    "proposed_crews": Measure("PPSU crews proposed", "count"),
    "today_desks": Measure("desk officers today", "count"),
    "today_crews": Measure("PPSU crews today", "count"),
    "crews.per_kelurahan": Measure("PPSU crews per kelurahan", "number"),
    "crews.per_kecamatan": Measure("PPSU crews per kecamatan", "number"),
    "crews.dispatch": Measure("dispatch rule", "text"),
    "crews.pooling": Measure("crew pooling", "text"),
    "coordination_mean_6h": Measure("mean coordination within 6 hours", "text"),
    "resolution_mean_7d": Measure("mean resolution within 7 days", "text"),
    "benchmark_resolution_9h": Measure("mean resolution within the 9-hour benchmark", "text"),
}

# Column names that are not KPIs but appear in tables, in words.
WORDS = {
    "kelurahan_code": "code",
    "kelurahan": "kelurahan",
    "kelurahan_name": "kelurahan",
    "kecamatan": "kecamatan",
    "kota": "kota",
    "group": "group",
    "stable": "stable",
    "kpi": "KPI",
    "period": "period",
    "published": "published",
    "simulated": "simulated",
    "tolerance": "tolerance",
    "pass": "within tolerance",
    "difference": "difference",
    "threshold": "practical threshold",
    "verdict": "verdict",
    "mean": "mean",
    "ci_low": "95 % CI low",
    "ci_high": "95 % CI high",
}

UNITS = {"hours": "h", "share": "%", "km": "km", "idr": "IDR"}


def measure(name: str) -> Measure:
    """The `Measure` of a column or KPI; an unknown name is shown as a plain number."""
    if name in MEASURES:
        return MEASURES[name]
    for prefix in ("meets_",):
        if name.startswith(prefix):
            return Measure("meets " + label(name[len(prefix) :]), "text")
    if name.endswith("_h"):
        return Measure(name[:-2].replace("_", " "), "hours")
    if "share" in name:
        return Measure(name.replace("_", " "), "share")
    return Measure(WORDS.get(name, name.replace("_", " ")), "number")


def unit_of(name: str) -> str:
    """The unit of a column or KPI (``h``, ``%``, ``km``, ``IDR``), or "" for a plain number."""
    return UNITS.get(measure(name).kind, "")


def label(name: str, *, unit: bool = False) -> str:
    """`name` in words, with its unit in brackets when `unit` (``mean resolution time (h)``)."""
    m = measure(name)
    text = WORDS.get(name, m.label)
    if unit and m.kind in UNITS:
        text += f" ({UNITS[m.kind]})"
    return text


def number(value: float, digits: int = 3, *, sign: bool = False) -> str:
    """`value` with `digits` decimals, never a negative zero ("-0.000" reads as a loss)."""
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    if text.lstrip("+-").strip("0.") == "":
        text = text.lstrip("+-")
    return text


def _grouped(value: float, digits: int, sign: bool) -> str:
    text = f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"
    if text.lstrip("+-").replace(",", "").strip("0.") == "":
        text = text.lstrip("+-")
    return text


def idr(value: float, *, sign: bool = False) -> str:
    """A sum of rupiah as people say it: ``3.1 bn IDR``, ``450 M IDR``, ``12,000 IDR``."""
    size = abs(value)
    for scale, suffix in ((1e12, "tn"), (1e9, "bn"), (1e6, "M")):
        if size >= scale:
            return f"{_grouped(value / scale, 1, sign)} {suffix} IDR"
    return f"{_grouped(value, 0, sign)} IDR"


def show(name: str, value: Any, *, sign: bool = False, unit: bool = False) -> str:
    """`value` of the column or KPI `name` for people: rounded to what matters, no negative
    zero, "-" for missing; with its unit after it when `unit`."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    kind = measure(name).kind
    if isinstance(value, str) or kind == "text":
        return str(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return "-"
    if kind == "hours":
        text = _grouped(x, 2 if abs(x) < 10 else 1, sign)
    elif kind == "share":
        text = _grouped(100 * x, 1, sign)
    elif kind in ("count", "km"):
        text = _grouped(x, 0, sign)
    elif kind == "idr":
        return idr(x, sign=sign)
    elif x == int(x) and abs(x) < 1e15:
        text = _grouped(x, 0, sign)
    else:
        text = _grouped(x, 2 if abs(x) < 1000 else 0, sign)
    if unit and kind in UNITS:
        text += " %" if kind == "share" else f" {UNITS[kind]}"
    return text


def sentence_list(items: list[str], *, limit: int = 5) -> str:
    """``a, b and c`` (with ``and N more`` past `limit`)."""
    if not items:
        return "none"
    head = items[:limit]
    rest = len(items) - len(head)
    if rest:
        return ", ".join(head) + f" and {rest} more"
    return head[0] if len(head) == 1 else ", ".join(head[:-1]) + " and " + head[-1]
