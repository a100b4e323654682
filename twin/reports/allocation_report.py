"""The outputs of `twin allocate`: the allocation per kelurahan and agency, its expected KPIs
against today's and a uniform one of the same budget, a map of the changes, and report.html."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from twin.experiments import statistics as st
from twin.reports import html
from twin.reports import study_report as rep
from twin.reports.formatting import idr, label
from twin.reports.maps import kelurahan_map
from twin.reports.places import places_of, with_places

if TYPE_CHECKING:
    from pathlib import Path

    import geopandas as gpd

    from twin.experiments.allocate import Outcome, Search
    from twin.experiments.allocation import Allocation, Evaluation


def _staff(a: Allocation, codes: Any, prefix: str) -> pd.DataFrame:
    return pd.DataFrame({f"{prefix} desk officers": a.desks, f"{prefix} PPSU crews": a.crews},
                        index=pd.Index(codes, name="kelurahan_code"))  # fmt: skip


def _meeting(e: Evaluation, targets: tuple[str, ...]) -> dict[str, int]:
    missed = e.missed(targets)
    return {t: int((~missed[t]).sum()) for t in targets}


def write_allocation(outcome: Outcome, search: Search, mainland: gpd.GeoDataFrame, codes: Any,
                     out: Path) -> dict[str, Any]:  # fmt: skip
    """Write allocation.csv, teams.csv, kpis.csv, the map and report.html; return the summary."""
    evals = {"proposed": outcome.chosen, "today": outcome.today, "uniform": outcome.uniform}
    p = outcome.prices
    per_kel = pd.concat(
        [_staff(outcome.today.allocation, codes, "today"),
         _staff(outcome.chosen.allocation, codes, "proposed"),
         _staff(outcome.uniform.allocation, codes, "uniform")], axis=1)  # fmt: skip
    per_kel["change"] = (per_kel["proposed desk officers"] + per_kel["proposed PPSU crews"]
                         - per_kel["today desk officers"] - per_kel["today PPSU crews"])  # fmt: skip
    for name in ("proposed", "today"):
        means = evals[name].means.reindex(per_kel.index)
        per_kel[f"{name}: mean coordination (h)"] = means["mean_coordination_h"]
        per_kel[f"{name}: mean resolution (h)"] = means["mean_resolution_h"]
    per_kel.to_csv(out / "allocation.csv")
    teams = pd.DataFrame({"agency": list(outcome.chosen.allocation.teams),
                          "teams per kota today": list(outcome.today.allocation.teams.values()),
                          "teams per kota proposed": list(outcome.chosen.allocation.teams.values())})  # fmt: skip
    teams.to_csv(out / "teams.csv", index=False)
    summaries = {n: st.summarise(e.results) for n, e in evals.items()}
    rows: list[dict[str, Any]] = []
    for n, e in evals.items():
        meet = _meeting(e, search.targets)
        rows.append({"allocation": n, **{k: summaries[n].at[k, "mean"] for k in
                     ("mean_coordination_h", "mean_resolution_h", "share_resolved_within_7d")},
                     **{f"kelurahan meeting {t}": v for t, v in meet.items()},
                     "breaches (kelurahan x target)": float(e.breaches.mean()),
                     "staff positions": int(e.allocation.desks.sum() + e.allocation.crews.sum()
                                            + p.kota * sum(e.allocation.teams.values())),
                     "staff_cost_idr": _idr(e, search, p.kota)})  # fmt: skip
    kpis = pd.DataFrame(rows)
    kpis.to_csv(out / "kpis.csv", index=False)
    n_kel = len(outcome.chosen.missed(search.targets))
    lines = [
        f"Budget {search.budget}; targets {', '.join(label(t) for t in search.targets)}; "
        f"{n_kel} kelurahan with reports."
    ]
    for t in search.targets:
        got = {str(r["allocation"]): int(r[f"kelurahan meeting {t}"]) for r in rows}
        lines.append(
            f"The proposed allocation meets the {label(t)} target in {got['proposed']} of {n_kel} "
            f"kelurahan: {got['proposed'] - got['today']:+d} against today ({got['today']}) and "
            f"{got['proposed'] - got['uniform']:+d} against a uniform spread of the same staff "
            f"({got['uniform']})."
        )
    cost = {str(r["allocation"]): float(r["staff_cost_idr"]) for r in rows}
    lines.append(f"It costs {idr(cost['proposed'])} a month, today's staff {idr(cost['today'])}.")
    sel = outcome.selection
    lines.append(
        f"Chosen among the best allocations of {len(outcome.rounds)} rounds by {sel['procedure']}"
        + (f", correct with probability >= {1 - sel['alpha']:.0%}" if sel.get("proven") else
           (f", stopped at its cap of {sel['replications']} replications: the best sample mean "
            "left, without the stated probability" if "alpha" in sel else ""))
        + "; the figures here come from fresh replications."
    )  # fmt: skip
    change = per_kel["change"].rename("staff_change")
    png = rep.plot_min_staffing_map(
        mainland, change, "staff_change", out / "allocation_map.png",
        title="desk officers + PPSU crews: proposed minus today", missing="no reports",
    )  # fmt: skip
    hover = per_kel.rename(columns={"proposed desk officers": "proposed_desks",
                                    "proposed PPSU crews": "proposed_crews",
                                    "today desk officers": "today_desks", "today PPSU crews": "today_crews"})  # fmt: skip
    frame = hover[["proposed_desks", "proposed_crews", "today_desks", "today_crews"]].assign(
        staff_change=change,
        mean_coordination_h=per_kel["proposed: mean coordination (h)"],
        mean_resolution_h=per_kel["proposed: mean resolution (h)"],
    )
    where = places_of(mainland)
    named = with_places(per_kel, where)
    rounds = pd.DataFrame(outcome.rounds)
    sections = [
        html.Section("Proposed against today and a uniform spread", [
            html.frame_table(kpis, "Means over fresh replications (common random numbers)"),
            html.frame_table(teams, "Agency teams per kota"),
        ]),
        html.Section("Map of the changes", [
            html.figure(png, "Desk officers + PPSU crews, proposed minus today"),
            html.Interactive("Hover a kelurahan for its staff today and proposed, and its expected KPIs.",
                             html.markup(kelurahan_map(mainland, frame, "staff_change", discrete=True,
                                                       hover=["today_desks", "proposed_desks", "today_crews",
                                                              "proposed_crews", "mean_coordination_h",
                                                              "mean_resolution_h"]))),
        ]),
        html.Section("Per kelurahan", [html.frame_table(
            named, "Staff today and proposed, and the expected KPIs (all columns, the uniform "
            "spread too: allocation.csv)",
            columns=["kelurahan", "kecamatan", "kota", "today desk officers", "proposed desk officers",
                     "today PPSU crews", "proposed PPSU crews", "change",
                     "proposed: mean coordination (h)", "proposed: mean resolution (h)"])]),
        html.Section("How it was found", [html.frame_table(rounds, "Greedy rounds (replications "
                                                            "of the search)")],
                     text=" ".join(outcome.log)),
    ]  # fmt: skip
    html.render("allocation", out / "report.html", title=f"Allocation of {search.scenario.name}",
                summary=lines, sections=sections,
                note=f"{search.replications} replications per evaluation, common random numbers.")  # fmt: skip
    return {"kpis": kpis, "per_kelurahan": per_kel, "teams": teams, "executive": lines}


def _idr(e: Evaluation, search: Search, kota: int) -> float:
    """The allocation's monthly cost in IDR (whatever the budget's unit)."""
    c = search.scenario.costs
    a = e.allocation
    return float(a.desks.sum() * c.desk_officer + a.crews.sum() * c.ppsu_crew
                 + kota * sum(a.teams.values()) * c.agency_team)  # fmt: skip
