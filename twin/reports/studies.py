"""The planners' studies behind `twin run --replications`, `twin compare` and `twin sweep`.

Each study builds its tasks, refuses bad input before any run starts, runs the replications
(`twin.experiments`), and writes tables (CSV), plots (PNG) and one self-contained HTML report
(`twin.reports.html`) that opens with its conclusions in plain sentences.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.errors import ScenarioError
from twin.experiments import statistics as st
from twin.experiments.replications import Task, check_replications
from twin.experiments.sweep import minimum_staffing
from twin.experiments.variants import apply_point
from twin.kpis import MIN_RANKED_REPORTS
from twin.model.payroll import StaffCost, staff_cost
from twin.reports import html
from twin.reports import study_report as rep
from twin.reports.formatting import idr, label, sentence_list, show
from twin.reports.maps import kelurahan_map
from twin.reports.places import mainland, place_name, places, with_places

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from twin.experiments.replications import ReplicationResult, Runner
    from twin.experiments.sweep import Sweep
    from twin.model.scenario import Scenario

SLA_KPIS = [
    "mean_coordination_h",
    "mean_resolution_h",
    "share_coordinated_within_6h",
    "share_resolved_within_7d",
]
# target name -> (KPI judged, field of the scenario's targets, words)
TARGETS = {
    "coordination_mean_6h": ("mean_coordination_h", "coordination_mean_h", "6-hour coordination"),
    "resolution_mean_7d": ("mean_resolution_h", "resolution_mean_h", "7-day resolution"),
    "benchmark_resolution_9h": ("mean_resolution_h", "benchmark_resolution_h", "9-hour benchmark"),
}


def _targets(scenario: Scenario) -> dict[str, float]:
    return dataclasses.asdict(scenario.targets)


def staff_costs(runner: Runner, scenarios: Sequence[Scenario]) -> list[StaffCost]:
    """Each scenario's staff and monthly cost, on the city the runs used (cached: loads fast)."""
    from twin.city.assembly import load_city

    city = load_city(runner.data_dir, speeds=scenarios[0].city.speed_settings())
    return [staff_cost(city, s) for s in scenarios]


def cost_table(costs: dict[str, StaffCost]) -> html.Table:
    """Staff and monthly cost per scenario (or grid point)."""
    frame = pd.DataFrame({n: c.as_dict() for n, c in costs.items()}).T
    frame = frame.reset_index(names="scenario")
    return html.frame_table(
        frame,
        "Staff and their cost per month (prices: the scenario's [costs])",
        columns=["scenario", "desk_officers", "agency_teams", "ppsu_crews", "desk_cost_idr",
                 "agency_cost_idr", "ppsu_cost_idr", "staff_cost_idr"],
    )  # fmt: skip


def cost_sentence(cost: StaffCost, scenario: Scenario) -> str:
    """``The staff (...) cost 3.1 bn IDR a month.``"""
    return (
        f"The staff ({cost.desk_officers:,} desk officers, {cost.agency_teams:,} agency teams, "
        f"{cost.ppsu_crews:,} PPSU crews) cost {idr(cost.total_idr)} a month "
        f"({scenario.costs.source})."
    )


def kelurahan_means(results: Sequence[ReplicationResult]) -> pd.DataFrame:
    """Each kelurahan's KPIs averaged over the replications (index: code)."""
    frame = pd.concat([r.kelurahan for r in results])
    return frame.groupby(level=0).mean(numeric_only=True)


def kelurahan_meeting(means: pd.DataFrame, scenario: Scenario, target: str) -> int:
    """How many kelurahan with reports meet `target` by their mean over the replications."""
    kpi, field, _ = TARGETS[target]
    with_reports = means[means["reports"] > 0]
    return int((with_reports[kpi] <= getattr(scenario.targets, field)).sum())


def _target_sentences(summary: pd.DataFrame, scenario: Scenario) -> list[str]:
    lines = []
    for target in ("coordination_mean_6h", "resolution_mean_7d"):
        kpi, field, words = TARGETS[target]
        mean, lo, hi = (summary.at[kpi, c] for c in ("mean", "ci_low", "ci_high"))
        limit = getattr(scenario.targets, field)
        met = mean <= limit
        sure = "" if not (lo <= limit <= hi) else " (the interval straddles the target: not sure)"
        lines.append(
            f"The {words} target ({limit:g} h on average) is {'met' if met else 'missed'}: "
            f"{label(kpi)} {show(kpi, mean, unit=True)} (95 % CI {show(kpi, lo)} to "
            f"{show(kpi, hi)} h){sure}."
        )
    return lines


def _per_kelurahan_map(
    data_dir: str | None, means: pd.DataFrame, colour: str, hover: list[str]
) -> html.Interactive:
    return html.Interactive(
        f"Hover a kelurahan for its name and KPIs (means over the replications); colour: "
        f"{label(colour, unit=True)}, scale clipped to the 2-98 % range.",
        html.markup(kelurahan_map(mainland(data_dir), means, colour, hover=hover)),
    )


def replicate(scenario: Scenario, replications: int, runner: Runner, out: Path) -> dict[str, Any]:
    """R independent replications of one scenario: KPI means with 95 % CIs and rank robustness."""
    check_replications(replications)
    results = runner.run(
        [Task((scenario.name,), scenario, r, runner.data_dir) for r in range(replications)]
    )
    out.mkdir(parents=True, exist_ok=True)
    summary = st.summarise(results)
    ranking = st.rank_robustness(results)
    stable = ranking[ranking["stable"]]
    per_rep = pd.DataFrame([{"replication": r.replication, **r.kpis} for r in results]).set_index(
        "replication"
    )
    summary.to_csv(out / "summary_ci.csv")
    per_rep.to_csv(out / "replications.csv")
    ranking.to_csv(out / "ranking_robustness.csv")
    verdict = st.verdicts(summary, scenario)
    cost = staff_costs(runner, [scenario])[0]
    (out / "summary_ci.json").write_text(
        json.dumps(
            {
                "scenario": scenario.name,
                "replications": replications,
                "targets": verdict,
                "kpis": summary.to_dict(orient="index"),
                "staff_cost": cost.as_dict(),
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    where = places(runner.data_dir)
    means = kelurahan_means(results)
    with_reports = int((means["reports"] > 0).sum())
    lines = [
        f"Over {replications} replications of {scenario.run.days} measured days, "
        f"{show('reports_per_day', summary.at['reports_per_day', 'mean'])} reports a day; "
        f"{show('share_resolved_within_7d', summary.at['share_resolved_within_7d', 'mean'], unit=True)} "
        "of them are resolved within 7 days.",
        *_target_sentences(summary, scenario),
        f"{kelurahan_meeting(means, scenario, 'coordination_mean_6h')} of {with_reports} kelurahan "
        f"with reports meet the 6-hour target on average, "
        f"{kelurahan_meeting(means, scenario, 'resolution_mean_7d')} the 7-day target.",
        cost_sentence(cost, scenario),
    ]
    worst = [place_name(str(c), where) for c in stable[stable["group"] == "worst"].index]
    lines.append(
        f"Stably among the 15 slowest of {ranking.attrs['ranked']} ranked kelurahan: "
        f"{sentence_list(worst)}."
        if worst
        else f"No kelurahan is stably among the 15 slowest of {ranking.attrs['ranked']} ranked: "
        "their order is chance."
    )
    plot = rep.plot_scenarios({scenario.name: summary}, _targets(scenario), out / "kpis_ci.png")
    targets = pd.DataFrame(
        [
            {"target": TARGETS[t][2], "KPI": label(TARGETS[t][0]), "met": met}
            for t, met in verdict.items()
        ]
    )
    ranked = with_places(ranking[ranking["group"] != ""], where)
    sections = [
        html.Section("KPIs", [
            html.kpi_table(summary, "Mean over the replications and its 95 % confidence interval",
                           columns=["mean", "ci_low", "ci_high"]),
            html.frame_table(targets, "Targets met by the replication means"),
            cost_table({scenario.name: cost}),
            html.figure(plot, "The four SLA KPIs with their 95 % confidence intervals and targets"),
        ]),
        html.Section("Map", [_per_kelurahan_map(runner.data_dir, means, "mean_resolution_h",
                                                ["mean_coordination_h", "reports"])]),
        html.Section(
            "Kelurahan ranking",
            [html.frame_table(ranked, f"Best and worst 15 of {ranking.attrs['ranked']} ranked",
                              columns=["kelurahan", "kecamatan", "kota", "reports_mean", "rank_mean",
                                       "rank_low", "rank_high", "group", "stable"])],
            text=f"Only kelurahan with at least {MIN_RANKED_REPORTS} reports per replication are "
            "ranked (1 = fastest mean resolution). The rank interval is the 2.5-97.5 % range of its "
            "ranks over the replications; a member of the best or worst 15 is stable when it was "
            f"there in at least 80 % of them ({len(stable)} are).",
        ),
    ]  # fmt: skip
    html.render("replications", out / "report.html",
                title=f"{scenario.name}: {replications} replications", summary=lines,
                sections=sections,
                note="Replications share nothing but the scenario: each draws its own random streams.")  # fmt: skip
    return {"summary": summary, "ranking": ranking, "verdicts": verdict, "executive": lines,
            "cost": cost}  # fmt: skip


def compare(
    scenarios: list[Scenario],
    replications: int,
    runner: Runner,
    out: Path,
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Paired comparison on common random numbers: every scenario against the first, each KPI
    judged better / worse / equivalent / inconclusive against its practical threshold."""
    check_replications(replications)
    st.practical_thresholds(thresholds)  # refuse an unknown KPI before any run
    if len(scenarios) < 2:
        raise ScenarioError("twin compare needs at least two scenario files")
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise ScenarioError(f"scenario names must differ to be compared: {', '.join(names)}")
    tasks = [Task((s.name,), s, r, runner.data_dir) for s in scenarios for r in range(replications)]
    results = runner.run(tasks)
    by_name = {n: [r for r in results if r.key == (n,)] for n in names}
    summaries = {n: st.summarise(rs) for n, rs in by_name.items()}
    verdict_rows = {s.name: st.verdicts(summaries[s.name], s) for s in scenarios}
    verdicts = pd.DataFrame.from_dict(verdict_rows, orient="index")
    means = pd.DataFrame({n: summaries[n]["mean"] for n in names}).T
    verdicts["mean_resolution_h"] = means["mean_resolution_h"]
    verdicts["mean_coordination_h"] = means["mean_coordination_h"]
    best = means["mean_resolution_h"].idxmin()
    diffs = {n: st.paired_differences(by_name[names[0]], by_name[n], thresholds) for n in names[1:]}
    kel = {n: kelurahan_means(rs) for n, rs in by_name.items()}
    meeting = {
        s.name: {t: kelurahan_meeting(kel[s.name], s, t) for t in TARGETS} for s in scenarios
    }
    costs = dict(zip(names, staff_costs(runner, scenarios), strict=True))
    verdicts["staff_cost_idr"] = [costs[n].total_idr for n in names]
    out.mkdir(parents=True, exist_ok=True)
    base = names[0]
    lines = [f"Best mean resolution: {best}."]
    executive = []
    for s in scenarios:
        n = s.name
        six, seven = meeting[n]["coordination_mean_6h"], meeting[n]["resolution_mean_7d"]
        text = (
            f"{n} meets the 6-hour target in {six} of {len(kel[n])} kelurahan and the 7-day "
            f"target in {seven}"
        )
        if n != base:
            more = six - meeting[base]["coordination_mean_6h"]
            text += f", {abs(more)} {'more' if more >= 0 else 'fewer'} than {base} (6 hours)"
            extra = costs[n].total_idr - costs[base].total_idr
            text += (
                f", at {idr(abs(extra))} a month {'more' if extra > 0 else 'less'}"
                if extra
                else ", at the same staffing cost"
            )
        else:
            text += f", at {idr(costs[n].total_idr)} a month"
        executive.append(text + ".")
    for n, d in diffs.items():
        d.to_csv(out / f"difference_{n}_vs_{base}.csv")
        for kpi in ("mean_resolution_h", "mean_coordination_h"):
            row = d.loc[kpi]
            sentence = (
                f"{n} minus {base}: {label(kpi)} {show(kpi, row['difference'], sign=True, unit=True)} "
                f"(95 % CI {show(kpi, row['ci_low'], sign=True)} to "
                f"{show(kpi, row['ci_high'], sign=True)} h; practical threshold "
                f"{show(kpi, row['threshold'], unit=True)}): {row['verdict']}."
            )
            executive.append(sentence)
            if kpi == "mean_resolution_h":
                lines.append(sentence)
    verdicts.to_csv(out / "verdicts.csv")
    for n, summary in summaries.items():
        summary.to_csv(out / f"summary_{n}.csv")
    plot = rep.plot_scenarios(summaries, _targets(scenarios[0]), out / "compare.png")
    forest = rep.plot_forest(diffs, SLA_KPIS, base, out / "differences.png", st.LOWER_IS_BETTER)
    targets = verdicts.reset_index(names="scenario")
    for t in ("coordination_mean_6h", "resolution_mean_7d"):
        targets[f"kelurahan meeting {TARGETS[t][2]}"] = [meeting[n][t] for n in names]
    diff_tables = [
        html.kpi_table(d, f"{n} minus {base}", columns=["difference", "ci_low", "ci_high"],
                       signed=["difference", "ci_low", "ci_high"], extra=["verdict"])
        for n, d in diffs.items()
    ]  # fmt: skip
    changed = pd.DataFrame(
        {
            "mean_resolution_h": kel[names[-1]]["mean_resolution_h"],
            "change_h": kel[names[-1]]["mean_resolution_h"] - kel[base]["mean_resolution_h"],
            "reports": kel[names[-1]]["reports"],
        }
    )
    sections = [
        html.Section(
            "Paired differences and verdicts",
            [html.figure(forest, "Each difference with its 95 % CI, in units of its practical "
                         "threshold, turned so that right is better"), *diff_tables],
        ),
        html.Section("Targets met and cost", [html.frame_table(targets, "By the replication means"),
                                              cost_table(costs)]),
        html.Section("KPIs side by side", [html.figure(plot, "Means and 95 % CIs")]),
        html.Section(f"Where {names[-1]} changes mean resolution", [
            html.Interactive(
                f"Change of each kelurahan's mean resolution, {names[-1]} minus {base} (h; "
                "negative is faster); hover for names and values.",
                html.markup(kelurahan_map(mainland(runner.data_dir), changed, "change_h",
                                          hover=["mean_resolution_h", "reports"], colourscale="RdBu_r",
                                          centred=True)),
            )
        ]),
    ]  # fmt: skip
    html.render("comparison", out / "report.html", title=f"Comparison of {', '.join(names)}",
                summary=executive, sections=sections,
                note=f"{replications} replications each; replication r of every scenario sees the same reports.")  # fmt: skip
    return {
        "verdicts": verdicts,
        "differences": diffs,
        "best": best,
        "conclusion": " ".join(lines),
        "executive": executive,
        "meeting": meeting,
        "costs": costs,
    }


def run_sweep(sweep: Sweep, runner: Runner, out: Path) -> dict[str, Any]:
    """Run the grid, then tabulate, draw the staffing curve and find each kelurahan's minimum."""
    scenarios = [apply_point(sweep.scenario, p) for p in sweep.points]
    tasks = [
        Task((i,), s, r, runner.data_dir)
        for i, s in enumerate(scenarios)
        for r in range(sweep.replications)
    ]
    results = runner.run(tasks)
    rows = []
    kel_means = {}
    for i, point in enumerate(sweep.points):
        rs = [r for r in results if r.key == (i,)]
        summary = st.summarise(rs)
        row: dict[str, Any] = dict(point)
        for kpi in summary.index:
            row[kpi] = summary.at[kpi, "mean"]
            row[f"{kpi}_ci_low"] = summary.at[kpi, "ci_low"]
            row[f"{kpi}_ci_high"] = summary.at[kpi, "ci_high"]
        row.update({f"meets_{k}": v for k, v in st.verdicts(summary, scenarios[i]).items()})
        rows.append(row)
        kel_means[i] = kelurahan_means(rs)
    for row, cost in zip(rows, staff_costs(runner, scenarios), strict=True):
        row.update(cost.as_dict())
    table = pd.DataFrame(rows)
    minimum = minimum_staffing(sweep, scenarios, kel_means)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "sweep.csv", index=False)
    minimum.to_csv(out / "minimum_staffing.csv")
    series = [f for f in sweep.grid if f != sweep.staffing]
    curve = rep.plot_staffing_curve(
        table, sweep.staffing, series, _targets(sweep.scenario), out / "staffing_curve.png"
    )
    where = places(runner.data_dir)
    outline = minimum_outline(minimum, sweep.staffing)
    best = minimum.min(axis=1)  # under the best of the other grid settings
    lines = sweep_sentences(sweep, outline, best)
    lines.append(cheapest_sentence(sweep, table))
    shape = mainland(runner.data_dir)
    map_png = rep.plot_min_staffing_map(
        shape, best, sweep.staffing, out / "minimum_staffing_map.png"
    )
    per_kel = with_places(minimum.rename(columns=setting_words), where)
    grid_cols = [*sweep.grid, *SLA_KPIS, *(f"meets_{t}" for t in sweep.targets), "staff_cost_idr"]
    sections = [
        html.Section("Grid", [html.frame_table(
            table, "KPI means over the replications at each grid point (confidence intervals: "
            "in the staffing curve and sweep.csv)", columns=grid_cols)]),
        html.Section("Staffing curve", [html.figure(curve, "Means with 95 % CIs against staffing; "
                                                    "dashed lines: the targets")]),
        html.Section(f"Smallest {label(sweep.staffing)} per kelurahan meeting "
                     f"{', '.join(TARGETS[t][2] for t in sweep.targets)}", [
            html.frame_table(outline, "How many kelurahan need each grid value"),
            html.figure(map_png, "Under the best of the other grid settings"),
            html.Interactive(
                "The same map: hover a kelurahan for its name and the smallest value meeting the targets.",
                html.markup(kelurahan_map(shape, best.rename(sweep.staffing).to_frame(), sweep.staffing,
                                          discrete=True)),
            ),
            html.frame_table(per_kel, "Per kelurahan (blank: no grid value meets the targets)"),
        ]),
    ]  # fmt: skip
    html.render("sweep", out / "report.html", title=f"Sweep {sweep.name}", summary=lines,
                sections=sections,
                note=f"{sweep.replications} replications per grid point, common random numbers across the grid.")  # fmt: skip
    return {"table": table, "minimum": minimum, "outline": outline, "executive": lines}


def minimum_outline(minimum: pd.DataFrame, staffing: str) -> pd.DataFrame:
    """Per setting of the other grid fields: how many kelurahan first meet the targets at each
    grid value, how many never do, and the value that serves every kelurahan (if any)."""
    rows = []
    grid = minimum.to_numpy(dtype=float)
    levels = sorted(set(grid[np.isfinite(grid)].tolist()))
    for setting in minimum.columns:
        values = minimum[setting]
        row: dict[str, Any] = {"grid setting": setting_words(str(setting))}
        for level in levels:
            row[f"{label(staffing)} = {level:g}"] = int((values == level).sum())
        row["never in the grid"] = int(values.isna().sum())
        row["enough for every kelurahan"] = (
            f"{values.max():g}" if values.notna().all() else "none in the grid"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def cheapest_sentence(sweep: Sweep, table: pd.DataFrame) -> str:
    """Which grid point meets the targets city-wide (by the replication means) at least cost."""
    meets = table[[f"meets_{t}" for t in sweep.targets]].all(axis=1)
    if not meets.any():
        return "No grid point meets the targets city-wide (by the replication means)."
    row = table[meets].sort_values("staff_cost_idr").iloc[0]
    setting = ", ".join(f"{label(f)} {row[f]}" for f in sweep.grid)
    return (
        f"The cheapest grid point meeting the targets city-wide is {setting}, at "
        f"{idr(float(row['staff_cost_idr']))} a month ({int(row['desk_officers']):,} desk officers, "
        f"{int(row['agency_teams']):,} agency teams, {int(row['ppsu_crews']):,} PPSU crews)."
    )


def setting_words(setting: str) -> str:
    """``crews.dispatch=fifo, crews.pooling=kecamatan`` -> ``dispatch rule fifo, crew pooling
    kecamatan`` (a grid setting as a column heading or in a sentence)."""
    parts = []
    for part in setting.split(", "):
        field, sep, value = part.partition("=")
        parts.append(f"{label(field)} {value}" if sep else label(field))
    return ", ".join(parts)


def sweep_sentences(sweep: Sweep, outline: pd.DataFrame, best: pd.Series) -> list[str]:
    """The sweep's executive summary."""
    words = ", ".join(TARGETS[t][2] for t in sweep.targets)
    lines = []
    for _, row in outline.iterrows():
        setting = (
            "" if row["grid setting"] == label(sweep.staffing) else f"With {row['grid setting']}, "
        )
        enough = row["enough for every kelurahan"]
        if enough == "none in the grid":
            lines.append(
                f"{setting or 'In this grid, '}{row['never in the grid']} kelurahan meet the "
                f"{words} targets at no {label(sweep.staffing)} in the grid."
            )
        else:
            lines.append(
                f"{setting}{enough} {label(sweep.staffing)} is enough for every kelurahan to "
                f"meet the {words} targets."
            )
    met = best.dropna()
    if len(met):
        lines.append(
            f"Under the best other setting, {len(met)} of {len(best)} kelurahan meet the targets "
            f"within the grid, {int((met == met.min()).sum())} of them at the smallest value "
            f"({met.min():g})."
        )
    return lines
