"""One run of a scenario: draw the reports, simulate the crews, collect records and KPIs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.entities import OUTCOMES, STAGES
from twin.kpis import judge_targets, kpis_by, rank_kelurahan, report_kpis
from twin.model.demand import generate_reports
from twin.model.process import CityTwin
from twin.model.streams import RandomStreams

if TYPE_CHECKING:
    from collections.abc import Callable

    from twin.city.assembly import City
    from twin.model.scenario import Scenario

TIMEZONE = "Asia/Jakarta"


@dataclass(slots=True)
class RunResult:
    """Everything one run produced.

    Attributes
    ----------
    scenario
        The scenario as run (with the run's seed and days).
    reports
        One row per report: place, category, channel, outcome, crew, every timestamp.
    summary
        Headline KPIs, targets met, crew utilisation and run facts.
    kelurahan
        KPIs and rank per kelurahan (every kelurahan, including those with no report).
    busy
        Crew busy intervals: ``crew, start_min, end_min``.
    on_duty
        Crews on shift in each minute of the run.
    """

    scenario: Scenario
    reports: pd.DataFrame
    summary: dict[str, Any]
    kelurahan: pd.DataFrame
    busy: pd.DataFrame
    on_duty: np.ndarray


def on_duty_per_minute(scenario: Scenario, crews_per_shift: list[int], minutes: int) -> np.ndarray:
    """How many crews are on shift in each minute of the run."""
    delta = np.zeros(minutes + 2 * 1440 + 1)
    for (start_h, end_h), n in zip(scenario.crews.shifts, crews_per_shift, strict=True):
        for day in range(minutes // 1440 + 1):
            a = int(day * 1440 + start_h * 60)
            b = int(day * 1440 + end_h * 60)
            delta[a] += n
            delta[b] -= n
    return np.cumsum(delta)[:minutes]


def busy_per_minute(busy: pd.DataFrame, minutes: int) -> np.ndarray:
    """How many crews are busy in each minute of the run (intervals rounded to the minute)."""
    delta = np.zeros(minutes + 1)
    start = np.clip(np.round(busy["start_min"].to_numpy()).astype(int), 0, minutes)
    end = np.clip(np.round(busy["end_min"].to_numpy()).astype(int), 0, minutes)
    np.add.at(delta, start, 1)
    np.add.at(delta, end, -1)
    return np.cumsum(delta)[:minutes]


def run_scenario(
    city: City,
    scenario: Scenario,
    *,
    seed: int | None = None,
    days: int | None = None,
    replication: int = 0,
    progress: Callable[[float], object] | None = None,
) -> RunResult:
    """Run `scenario` once on `city`.

    Parameters
    ----------
    city
        The loaded city (its speeds should be the scenario's).
    scenario
        The scenario.
    seed, days
        Override the scenario's ``run.seed`` and ``run.days``.
    replication
        Replication number (selects independent streams for the same seed).
    progress
        Called with 1 after each simulated day.
    """
    run = scenario.run
    run = dataclasses.replace(
        run, seed=run.seed if seed is None else seed, days=run.days if days is None else days
    )
    scenario = dataclasses.replace(scenario, run=run)
    started = time.perf_counter()
    reports = generate_reports(city, scenario, RandomStreams(run.seed, replication))
    twin = CityTwin(city, scenario, reports)
    until = run.days * 1440.0
    twin.run(until_min=until, progress=progress)
    closed = twin.outcome_closed_min()
    closed[closed > until] = np.nan  # not closed by the end of the run
    f = reports.frame
    times = {
        "submitted": f["submitted_min"].to_numpy(),
        "received": f["received_min"].to_numpy(),
        "coordinated": np.where(twin.coordinated_min <= until, twin.coordinated_min, np.nan),
        "assigned": twin.assigned_min,
        "arrived": np.where(twin.arrived_min <= until, twin.arrived_min, np.nan),
        "done": np.where(twin.done_min <= until, twin.done_min, np.nan),
        "closed": closed,
    }
    table = city.table
    origin = pd.Timestamp(dt.datetime.fromisoformat(run.start_date), tz=TIMEZONE)
    kel = f["kelurahan"].to_numpy()
    out = pd.DataFrame(
        {
            "report_id": np.arange(len(f)),
            "kelurahan_code": table["kode_kemendagri"].to_numpy()[kel],
            "kecamatan": table["kecamatan"].to_numpy()[kel],
            "kota": table["kota"].to_numpy()[kel],
            "category": pd.Categorical.from_codes(
                f["category"].to_numpy(), pd.Index(reports.categories)
            ),
            "channel": pd.Categorical.from_codes(
                f["channel"].to_numpy(), pd.Index(reports.channels)
            ),
            "outcome": pd.Categorical.from_codes(f["outcome"].to_numpy(), pd.Index(OUTCOMES)),
            "flood_day_surge": f["flood"].to_numpy(),
            "lon": f["lon"].to_numpy(),
            "lat": f["lat"].to_numpy(),
            "node": f["node"].to_numpy(),
            "crew": twin.crew_of,
            "visits": twin.visits,
            "travel_km": twin.travel_km,
        }
    )
    for stage in STAGES:
        out[f"{stage}_at"] = origin + pd.to_timedelta(np.round(times[stage] * 60), unit="s")
    for stage in STAGES[1:]:
        out[f"{stage}_h"] = times[stage] / 60.0

    kpi_frame = out.rename(columns={"kelurahan_code": "kelurahan"})
    kpis = report_kpis(kpi_frame)
    busy = pd.DataFrame(twin.busy_log, columns=["crew", "start_min", "end_min"])
    crews_per_shift = [
        sum(1 for c in twin.crews if c.shift == s) for s in range(len(scenario.crews.shifts))
    ]
    minutes = int(until)
    on_duty = on_duty_per_minute(scenario, crews_per_shift, minutes)
    busy_min = busy_per_minute(busy, minutes)
    utilisation = (
        float(np.minimum(busy_min, on_duty).sum() / on_duty.sum())
        if on_duty.sum()
        else float("nan")
    )

    per_kel = kpis_by(kpi_frame, "kelurahan").reindex(table["kode_kemendagri"])
    per_kel["reports"] = per_kel["reports"].fillna(0).astype(int)
    per_kel.insert(0, "kelurahan_name", table["kelurahan"].to_numpy())
    per_kel.insert(1, "kota", table["kota"].to_numpy())
    per_kel["crews"] = [sum(1 for c in twin.crews if c.home == k) for k in range(city.n_kelurahan)]
    per_kel = rank_kelurahan(per_kel.rename_axis("kelurahan_code"))

    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": run.seed,
        "replication": replication,
        "days": run.days,
        **kpis,
        "crew_utilisation": utilisation,
        "crews": len(twin.crews),
        "dispatch": scenario.crews.dispatch,
        "pooling": scenario.crews.pooling,
        "travel_km": float(twin.travel_km.sum() + twin.return_km),
        "outcomes": {name: int((f["outcome"] == i).sum()) for i, name in enumerate(OUTCOMES)},
        "by_kota": kpis_by(kpi_frame, "kota")[
            ["reports", "mean_resolution_h", "resolved_share"]
        ].to_dict(orient="index"),
        "by_category": kpis_by(kpi_frame, "category")[
            ["reports", "mean_resolution_h", "resolved_share"]
        ].to_dict(orient="index"),
        "best_15": per_kel.head(15).index.tolist(),
        "worst_15": per_kel[per_kel["reports"] > 0].tail(15).index.tolist()[::-1],
        "runtime_s": round(time.perf_counter() - started, 2),
    }
    summary["targets"] = judge_targets(kpis, scenario.targets)
    return RunResult(
        scenario=scenario,
        reports=out,
        summary=summary,
        kelurahan=per_kel,
        busy=busy,
        on_duty=on_duty,
    )
