"""The planners' studies behind `twin run --replications`, `twin compare` and `twin sweep`.

Each study builds its tasks, refuses bad input before any run starts, runs the replications
(`twin.experiments`), and writes tables, plots and one self-contained HTML report.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from twin.errors import ScenarioError
from twin.experiments import statistics as st
from twin.experiments.replications import Task, check_replications
from twin.experiments.sweep import minimum_staffing
from twin.experiments.variants import apply_point
from twin.kpis import MIN_RANKED_REPORTS
from twin.reports import study_report as rep

if TYPE_CHECKING:
    from pathlib import Path

    from twin.city.assembly import City
    from twin.experiments.replications import Runner
    from twin.experiments.sweep import Sweep
    from twin.model.scenario import Scenario


def _targets(scenario: Scenario) -> dict[str, float]:
    return dataclasses.asdict(scenario.targets)


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
    (out / "summary_ci.json").write_text(
        json.dumps(
            {
                "scenario": scenario.name,
                "replications": replications,
                "targets": verdict,
                "kpis": summary.to_dict(orient="index"),
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    plot = rep.plot_scenarios({scenario.name: summary}, _targets(scenario), out / "kpis_ci.png")
    rep.write_html(
        out / "report.html",
        f"{scenario.name}: {replications} replications",
        [
            ("KPIs: mean and 95 % confidence interval", summary),
            (
                "Targets met (by the replication means)",
                pd.DataFrame([verdict], index=[scenario.name]),
            ),
            ("Plots", plot),
            (
                f"Kelurahan ranking: best and worst 15 of {ranking.attrs['ranked']} ranked "
                f"(at least {MIN_RANKED_REPORTS} reports per replication); rank interval: "
                "2.5-97.5 % of the replications' ranks; stable: in the group in >= 80 % of them "
                f"({len(stable)} stable)",
                ranking[ranking["group"] != ""],
            ),
        ],
        note="Replications share nothing but the scenario: each draws its own random streams.",
    )
    return {"summary": summary, "ranking": ranking, "verdicts": verdict}


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
    out.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, Any]] = [
        ("Verdicts (targets met by the replication means)", verdicts)
    ]
    lines = [f"Best mean resolution: {best}."]
    for n, d in diffs.items():
        d.to_csv(out / f"difference_{n}_vs_{names[0]}.csv")
        row = d.loc["mean_resolution_h"].to_dict()
        delta, lo, hi, limit = (
            rep.number(float(row[k]), 2, sign=k == "difference")
            for k in ("difference", "ci_low", "ci_high", "threshold")
        )
        lines.append(
            f"{n} - {names[0]}: mean resolution {delta} h (95 % CI {lo} to {hi}; "
            f"practical threshold {limit} h): {row['verdict']}."
        )
        sections.append((f"Paired differences: {n} minus {names[0]} (95 % CI)", d))
    verdicts.to_csv(out / "verdicts.csv")
    for n, s in summaries.items():
        s.to_csv(out / f"summary_{n}.csv")
    plot = rep.plot_scenarios(summaries, _targets(scenarios[0]), out / "compare.png")
    sections[1:1] = [("Conclusion", " ".join(lines)), ("KPIs side by side", plot)]
    rep.write_html(out / "report.html", f"Comparison of {', '.join(names)}", sections,
                   note=f"{replications} replications each; replication r of every scenario sees the same reports.")  # fmt: skip
    return {"verdicts": verdicts, "differences": diffs, "best": best, "conclusion": " ".join(lines)}


def run_sweep(sweep: Sweep, runner: Runner, out: Path, city: City | None = None) -> dict[str, Any]:
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
        kel_means[i] = pd.concat([r.kelurahan for r in rs]).groupby(level=0).mean(numeric_only=True)
    table = pd.DataFrame(rows)
    minimum = minimum_staffing(sweep, scenarios, kel_means)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "sweep.csv", index=False)
    minimum.to_csv(out / "minimum_staffing.csv")
    series = [f for f in sweep.grid if f != sweep.staffing]
    curve = rep.plot_staffing_curve(table, sweep.staffing, series, out / "staffing_curve.png")
    sections: list[tuple[str, Any]] = [
        ("Grid: KPI means with 95 % CIs", table.set_index(list(sweep.grid))),
        ("Staffing curve", curve),
        (
            f"Smallest {sweep.staffing} per kelurahan meeting {', '.join(sweep.targets)}",
            minimum.describe().T,
        ),
    ]
    if city is not None:
        best = minimum.min(axis=1)  # under the best of the other grid settings
        sections.append(
            (
                "Map",
                rep.plot_min_staffing_map(
                    city, best, sweep.staffing, out / "minimum_staffing_map.png"
                ),
            )
        )
    sections.append(("Per kelurahan", minimum))
    rep.write_html(out / "report.html", f"Sweep {sweep.name}", sections,
                   note=f"{sweep.replications} replications per grid point, common random numbers across the grid.")  # fmt: skip
    return {"table": table, "minimum": minimum}
