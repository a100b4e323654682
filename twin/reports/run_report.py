"""The report.html of one `twin run`: what a planner reads first, with the run's figures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from twin.reports import html
from twin.reports.formatting import idr, label, sentence_list, show
from twin.reports.maps import kelurahan_map
from twin.reports.places import place_name, places_of, short_kota, with_places

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import geopandas as gpd

HEADLINE = (
    "reports", "resolved_share", "censored_resolution_share", "mean_coordination_h",
    "share_coordinated_within_6h", "mean_resolution_h", "share_resolved_within_7d",
    "mean_resolution_of_resolved_h", "p50_resolution_h", "p90_resolution_h", "crew_utilisation",
    "travel_km",
)  # fmt: skip
KELURAHAN_COLUMNS = (
    "reports", "mean_coordination_h", "share_coordinated_within_6h", "mean_resolution_h",
    "share_resolved_within_7d", "censored_resolution_share", "crews", "rank",
)  # fmt: skip
TARGET_WORDS = {
    "coordination_mean_6h": "6-hour coordination",
    "resolution_mean_7d": "7-day resolution",
    "benchmark_resolution_9h": "9-hour benchmark (Dec 2016)",
}


def run_sentences(
    summary: dict[str, Any], kelurahan: pd.DataFrame, where: pd.DataFrame
) -> list[str]:
    """The executive summary of a run, in plain sentences."""
    s = summary
    lines = [
        f"In {s['days']} measured days, {s['reports']:,} reports were received "
        f"({s['reports'] / max(s['days'], 1):,.0f} a day); "
        f"{show('share_resolved_within_7d', s['share_resolved_within_7d'], unit=True)} were "
        f"resolved within 7 days and {show('censored_resolution_share', s['censored_resolution_share'], unit=True)} "
        f"were still open {s['follow_up_days']} days after the period.",
    ]
    for name, t in s["targets"].items():
        lines.append(
            f"The {TARGET_WORDS.get(name, name)} target is {'met' if t['met'] else 'missed'}: "
            f"{label(t['kpi'])} {show(t['kpi'], t['value'], unit=True)} against at most "
            f"{t['target_max']:g} h."
        )
    seen = kelurahan[kelurahan["reports"] > 0]
    limits = {n: t["target_max"] for n, t in s["targets"].items()}
    six = int((seen["mean_coordination_h"] <= limits["coordination_mean_6h"]).sum())
    seven = int((seen["mean_resolution_h"] <= limits["resolution_mean_7d"]).sum())
    lines.append(
        f"{six} of {len(seen)} kelurahan with reports meet the 6-hour target on their own mean, "
        f"{seven} the 7-day target."
    )
    cost = s.get("staff_cost")
    if cost:
        lines.append(
            f"The staff ({cost['desk_officers']:,} desk officers, {cost['agency_teams']:,} agency "
            f"teams, {cost['ppsu_crews']:,} PPSU crews) cost {idr(cost['staff_cost_idr'])} a month."
        )
    worst = [place_name(str(k["code"]), where) for k in s.get("worst_15", [])[:3]]
    if worst:
        lines.append(f"Slowest ranked kelurahan: {sentence_list(worst)}.")
    return lines


def cost_section(summary: dict[str, Any]) -> list[html.Section]:
    """Staff, price and monthly cost of each kind (none when the summary has no cost)."""
    cost = summary.get("staff_cost")
    if not cost:
        return []
    kinds = (("desk officers", "desk_officers", "desk_cost_idr"),
             ("agency teams", "agency_teams", "agency_cost_idr"),
             ("PPSU crews", "ppsu_crews", "ppsu_cost_idr"))  # fmt: skip
    frame = pd.DataFrame(
        [{"staff": k, "count": cost[n], "per month (IDR)": idr(cost[c])} for k, n, c in kinds]
        + [{"staff": "all", "count": sum(cost[n] for _, n, _ in kinds),
            "per month (IDR)": idr(cost["staff_cost_idr"])}]
    )  # fmt: skip
    return [
        html.Section(
            "Staff and cost",
            [html.frame_table(frame, "Staffing at the run's start, cost per month")],
        )
    ]


def write_run_report(
    summary: dict[str, Any],
    kelurahan: pd.DataFrame,
    mainland: gpd.GeoDataFrame,
    figures: Iterable[Path],
    out: Path,
) -> Path:
    """Write ``out/report.html`` for a run: summary, targets, map, figures, tables.

    `figures` is iterated once the map is built, so figures still being drawn
    (`twin.reports.run_plots.FiguresDrawnAside`) are awaited as late as possible.
    """
    where = places_of(mainland)
    headline = pd.DataFrame({"value": [summary[k] for k in HEADLINE]}, index=list(HEADLINE))
    targets = pd.DataFrame(
        [
            {"target": TARGET_WORDS.get(n, n), "KPI": label(t["kpi"]),
             "value (h)": round(float(t["value"]), 2), "at most (h)": t["target_max"], "met": t["met"]}
            for n, t in summary["targets"].items()
        ]
    )  # fmt: skip
    kota = pd.DataFrame.from_dict(summary["by_kota"], orient="index")
    kota = kota.reset_index(names="kota").assign(kota=lambda f: [short_kota(k) for k in f["kota"]])
    category = pd.DataFrame.from_dict(summary["by_category"], orient="index")
    category = category.reset_index(names="category")
    columns = [c for c in KELURAHAN_COLUMNS if c in kelurahan]
    named = with_places(kelurahan[columns], where)
    hover = [c for c in ("mean_coordination_h", "share_resolved_within_7d", "reports", "rank")
             if c in kelurahan]  # fmt: skip
    sections = [
        html.Section("Headline KPIs", [
            html.kpi_table(headline, "The cohort of reports received in the measured period",
                           columns=["value"]),
            html.frame_table(targets, "Targets"),
        ]),
        *cost_section(summary),
        html.Section("Map", [html.Interactive(
            "Mean resolution time per kelurahan (colour scale clipped to the 2-98 % range); "
            "hover a kelurahan for its name and KPIs.",
            html.markup(kelurahan_map(mainland, kelurahan, "mean_resolution_h", hover=hover)),
        )]),
        html.Section("Figures", [html.figure(p, p.stem.replace("_", " ")) for p in figures]),
        html.Section("By kota and category", [
            html.frame_table(kota, "Per kota"), html.frame_table(category, "Per report category"),
        ]),
        html.Section("Every kelurahan", [html.frame_table(named, "KPIs per kelurahan (rank 1 = "
                                                            "fastest; 0 = too few reports to rank)")]),
    ]  # fmt: skip
    return html.render(
        "run", out / "report.html",
        title=f"{summary['scenario']}: one run of {summary['days']} days",
        summary=run_sentences(summary, kelurahan, where), sections=sections,
        note=f"seed {summary['seed']}; {summary['warm_up_days']}-day warm-up, "
        f"{summary['follow_up_days']}-day follow-up; dispatch {summary['dispatch']}, "
        f"pooling {summary['pooling']}.",
    )  # fmt: skip
