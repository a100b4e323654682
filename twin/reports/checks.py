"""The reports of the model's checks: validation against published outcomes and sensitivity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from twin.reports import html
from twin.reports import study_report as rep
from twin.reports.formatting import label, sentence_list, show

if TYPE_CHECKING:
    from pathlib import Path


def write_validation_report(table: pd.DataFrame, replications: int, out: Path) -> Path:
    """The validation table (fitted and predicted figures), its plot and a summary of what passed
    into ``out/report.html``."""
    plot = rep.plot_validation(table, out / "validation.png")
    rows = []
    for _, r in table.iterrows():
        kpi = str(r["kpi"])
        predicted = r["role"] == "predicted"
        good = bool(r["in_interval"] if predicted else r["pass"])
        rows.append(
            [
                html.Cell(str(r["period"])),
                html.Cell(str(r["check"])),
                html.Cell(label(kpi, unit=True)),
                html.Cell(str(r["role"])),
                html.Cell(show(kpi, r["published"]), repr(float(r["published"]))),
                html.Cell(show(kpi, r["simulated"]), repr(float(r["simulated"]))),
                html.Cell(f"{show(kpi, r['pi_low'])} to {show(kpi, r['pi_high'])}"),
                html.Cell(str(r["tolerance"])),
                html.Cell("yes" if good else "no", tone="good" if good else "bad"),
            ]
        )
    headers = ["period", "check", "KPI", "role", "published", "simulated (mean)",
               "95 % predictive interval", "tolerance", "passes"]  # fmt: skip
    numeric = [False, False, False, False, True, True, False, False, False]
    shown = html.Table("Published against simulated", headers, rows, numeric)
    fitted = table[table["role"] != "predicted"]
    predicted = table[table["role"] == "predicted"]
    lines = [
        f"In sample: {int(fitted['pass'].sum())} of {len(fitted)} fitted figures and volumes are "
        "within tolerance.",
        f"Out of sample: {int(predicted['in_interval'].sum())} of {len(predicted)} published "
        "values the model was not fitted to lie inside the 95 % predictive interval.",
    ]
    missed = pd.concat([fitted[~fitted["pass"]], predicted[~predicted["in_interval"]]])
    if len(missed):
        names = [
            f"{p} ({c}): {label(str(k))}"
            for p, c, k in zip(missed["period"], missed["check"], missed["kpi"], strict=True)
        ]
        lines.append(f"Missed: {sentence_list(names, limit=12)}.")
    sources = sorted(set(table.get("source", pd.Series(dtype=str)).dropna().astype(str)))
    sections = [
        html.Section("Published against simulated", [shown, html.figure(plot, "Simulated / published")]),
        html.Section("Sources", text="; ".join(sources)) if sources else None,
    ]  # fmt: skip
    return html.render(
        "validation", out / "report.html", title="Validation against published outcomes",
        summary=lines, sections=[s for s in sections if s is not None],
        note=f"{replications} runs per period and check, each a draw of the calibrated "
        "parameters with its own replication.",
    )  # fmt: skip


def write_sensitivity_report(
    result: dict[str, Any], scenario_name: str, days: int, trajectories: int, out: Path
) -> Path:
    """The Morris ranking, its plot and the indices into ``out/report.html``."""
    indices: pd.DataFrame = result["indices"]
    ranking: pd.DataFrame = result["ranking"]
    plot = rep.plot_sensitivity(indices, list(ranking.index), out / "sensitivity.png")
    per_kpi = indices.pivot(index="parameter", columns="kpi", values="rank")
    ranked = ranking.join(per_kpi).reset_index(names="parameter")
    ranked = ranked.rename(columns={k: f"rank for {label(k)}" for k in per_kpi.columns})
    top = list(ranking.index[:3])
    lines = [
        f"Of {len(ranking)} assumed parameters, the KPIs move most with {sentence_list(top)}.",
        f"{result['runs']} runs of {days} days ({trajectories} Morris trajectories).",
    ]
    detail = indices.assign(kpi=[label(k) for k in indices["kpi"]])
    sections = [
        html.Section("Parameters ranked", [
            html.frame_table(ranked, "By their mean effect over the four SLA KPIs (mu* per unit "
                             "of the KPI's spread; rank per KPI)"),
            html.figure(plot, "mu* with its 95 % bootstrap interval, per KPI"),
        ]),
        html.Section("Morris indices", [html.frame_table(detail, "Every parameter and KPI")]),
    ]  # fmt: skip
    return html.render("sensitivity", out / "report.html", title=f"Sensitivity of {scenario_name}",
                       summary=lines, sections=sections,
                       note=f"{trajectories} trajectories, {result['runs']} runs, common random numbers.")  # fmt: skip
