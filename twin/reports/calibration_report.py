"""A calibration's report folder and the calibrated scenario that points to it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from twin.model.scenario import load_scenario
from twin.reports import html
from twin.reports.study_report import plot_posterior

if TYPE_CHECKING:
    import pandas as pd

    from twin.experiments.inference import Calibration
    from twin.experiments.periods import Period


def write_calibration_report(
    calibration: Calibration, marginals: pd.DataFrame, trade_offs: pd.DataFrame, out: Path
) -> Path:
    """Write `out`/: posterior.csv (the accepted draws, weights, distances and simulated KPIs),
    marginals.csv, trade_offs.csv, generations.csv, posterior.png and report.html."""
    out.mkdir(parents=True, exist_ok=True)
    calibration.population.to_csv(out / "posterior.csv", index=False)
    marginals.to_csv(out / "marginals.csv", index=False)
    trade_offs.to_csv(out / "trade_offs.csv", index=False)
    calibration.generations.to_csv(out / "generations.csv", index=False)
    plot = plot_posterior(calibration.population, calibration.fields, out / "posterior.png")
    consistent = len(calibration.consistent)
    note = (
        f"ABC-SMC (pyabc): {calibration.simulations} runs in {calibration.seconds:.0f} s; final "
        f"tolerance {calibration.epsilon:.2f} x the published tolerances; {consistent} of "
        f"{len(calibration.population)} accepted draws within every published tolerance; "
        f"effective sample size {calibration.effective_size:.1f}."
    )
    summary = [
        f"{consistent} of {len(calibration.population)} accepted parameter draws reproduce every "
        f"published figure of {calibration.period} within its tolerance.",
        f"{calibration.simulations} simulation runs, {calibration.seconds:.0f} s.",
    ]
    sections = [
        html.Section("The calibration region", [
            html.frame_table(marginals, "Each parameter's range among the accepted draws"),
            html.frame_table(trade_offs, "Which parameters trade off (weighted correlation of "
                             "the accepted draws)"),
            html.figure(plot, "Accepted draws, pair by pair"),
        ]),
        html.Section("How the search went", [
            html.frame_table(calibration.generations, "Generations"),
            html.frame_table(calibration.population, "Accepted draws"),
        ]),
    ]  # fmt: skip
    html.render("calibration", out / "report.html", title=f"Calibration of {calibration.period}",
                summary=summary, sections=sections, note=note)  # fmt: skip
    return out


def write_calibrated(period: Period, chosen: dict[str, float], report: Path, out: Path) -> Path:
    """Write the calibrated scenario `out`: ``base`` = the period's scenario, the chosen values,
    and comments pointing to the calibration `report`. Never a shipped file unless named."""
    out.parent.mkdir(parents=True, exist_ok=True)
    base = Path(os.path.relpath(period.scenario, out.parent.resolve())).as_posix()
    where = Path(os.path.relpath(report.resolve(), out.parent.resolve())).as_posix()
    lines = [
        f"# Calibrated by `twin calibrate {period.name}`: ABC-SMC over the plausible ranges of",
        f"# {', '.join(chosen)}; these values are the accepted draw closest to the published figures.",
        f"# The set of values consistent with them (accepted draws, ranges, trade-offs): {where}/",
        f"base = {json.dumps(base)}",
        f"description = {json.dumps(f'{period.name}, calibrated (report: {where}/report.html)')}",
        "",
    ]
    # the period's dates and published volume, then the chosen values (one table per section)
    tables: dict[str, dict[str, float | str]] = {
        "run": {"start_date": period.start.isoformat()},
        "demand": {"reports_per_day": period.volume.published},
    }
    for paths, value in chosen.items():
        for path in paths.split(","):  # tied fields take the same value
            section, _, key = path.rpartition(".")
            tables.setdefault(section, {})[key] = float(f"{value:.6g}")
    for section, values in tables.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
        lines.append("")
    out.write_text("\n".join(lines), encoding="utf-8")
    load_scenario(out)  # the written file must load
    return out
