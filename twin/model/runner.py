"""One run of a scenario: draw the reports, simulate the crews, collect records and KPIs.

A run simulates a warm-up, the measured period (``run.days``) and a follow-up. Its records and
KPIs are about the *cohort*: the reports received in the measured period, followed until the end
of the follow-up (later stages are censored there). Times are hours from the period's start.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.entities import OUTCOMES, STAGES
from twin.kpis import MIN_RANKED_REPORTS, judge_targets, kpis_by, rank_kelurahan, report_kpis
from twin.model.decomposition import decompose
from twin.model.demand import UNANSWERED, generate_reports
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
        One row per report of the cohort (received in the measured period): place, category,
        channel, outcome, crew, every timestamp (NaN/NaT: not reached by the follow-up's end).
    summary
        Headline KPIs, targets met, crew utilisation and run facts.
    kelurahan
        KPIs and rank per kelurahan (every kelurahan, including those with no report).
    busy
        Crew busy intervals: ``crew, start_min, end_min`` (minutes from the period's start).
    on_duty
        Crews on shift in each minute of the measured period.
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


def desk_utilisation(twin: CityTwin, f: pd.DataFrame, offset: float, days: int) -> float:
    """Desk staff's handling minutes over their open minutes, within the measured period
    (handling counted by the minute it was done; approximate at the period's edges)."""
    done = twin.timeline.coordinated_min
    within = (done >= offset) & (done < offset + days * 1440.0)
    handled = float(f["handling_min"].to_numpy()[within].sum())
    first = int(offset // 1440)
    open_min = twin.calendar.open_minutes(first + days) - twin.calendar.open_minutes(first)
    return handled / max(1e-9, float(twin.staff.sum()) * open_min)


def simulated_scenario(scenario: Scenario) -> Scenario:
    """The scenario as simulated: warm-up + period + follow-up days, starting the warm-up's
    length before the period's start date (flood days stay on their period days)."""
    run = scenario.run
    start = dt.date.fromisoformat(run.start_date) - dt.timedelta(days=run.warm_up_days)
    flood = scenario.demand.flood
    flood = dataclasses.replace(flood, days=tuple(d + run.warm_up_days for d in flood.days))
    return dataclasses.replace(
        scenario,
        run=dataclasses.replace(
            run,
            days=run.warm_up_days + run.days + run.follow_up_days,
            start_date=start.isoformat(),
            warm_up_days=0,
            follow_up_days=0,
        ),
        demand=dataclasses.replace(scenario.demand, flood=flood),
    )


def run_scenario(
    city: City,
    scenario: Scenario,
    *,
    seed: int | None = None,
    days: int | None = None,
    replication: int = 0,
    progress: Callable[[float], object] | None = None,
    desk_events: bool = False,
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
        Called with 1 after each simulated day (warm-up and follow-up included).
    desk_events
        Simulate first-come-first-served desks event by event (a check; same records).
    """
    run = scenario.run
    run = dataclasses.replace(
        run, seed=run.seed if seed is None else seed, days=run.days if days is None else days
    )
    scenario = dataclasses.replace(scenario, run=run)
    started = time.perf_counter()
    simulated = simulated_scenario(scenario)
    reports = generate_reports(city, simulated, RandomStreams(run.seed, replication))
    twin = CityTwin(city, simulated, reports, desk_events=desk_events)
    twin.run(until_min=simulated.run.days * 1440.0, progress=progress)
    offset = run.warm_up_days * 1440.0  # minutes from the simulation's start to the period's
    end = (run.days + run.follow_up_days) * 1440.0  # end of the follow-up, from the period's start

    def seen(at_min: np.ndarray) -> np.ndarray:
        """Minutes from the period's start; NaN when reached after the follow-up (censored)."""
        t = at_min - offset
        return np.where(t <= end, t, np.nan)

    f = reports.frame
    outcomes = twin.outcomes()
    received = f["received_min"].to_numpy() - offset
    cohort = (received >= 0) & (received < run.days * 1440.0)
    times = {
        "submitted": f["submitted_min"].to_numpy() - offset,
        "received": received,
        "picked_up": seen(twin.timeline.picked_min),
        "coordinated": seen(twin.timeline.coordinated_min),
        "assigned": seen(twin.timeline.assigned_min),
        "arrived": seen(twin.timeline.arrived_min),
        "done": seen(twin.timeline.done_min),
        "closed": seen(twin.outcome_closed_min()),
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
            "outcome": pd.Categorical.from_codes(outcomes, pd.Index(OUTCOMES)),
            "flood_day_surge": f["flood"].to_numpy(),
            "lon": f["lon"].to_numpy(),
            "lat": f["lat"].to_numpy(),
            "node": f["node"].to_numpy(),
            "agency": pd.Categorical.from_codes(
                f["agency"].to_numpy(), pd.Index(list(scenario.agencies))
            ),
            "crew": twin.timeline.crew_of,
            "visits": twin.timeline.visits,
            "travel_km": twin.timeline.travel_km,
        }
    )
    for stage in STAGES:
        out[f"{stage}_at"] = origin + pd.to_timedelta(np.round(times[stage] * 60), unit="s")
    for stage in STAGES[1:]:
        out[f"{stage}_h"] = times[stage] / 60.0
    for part in ("team_wait", "ride", "work"):  # summed over visits: the decomposition's parts
        out[f"{part}_h"] = getattr(twin.timeline, f"{part}_min") / 60.0
    out = out[cohort].reset_index(drop=True)

    kpi_frame = out.rename(columns={"kelurahan_code": "kelurahan"})
    observed = {"end_h": end / 60.0, "horizon_h": run.follow_up_days * 24.0 or None}
    kpis = report_kpis(kpi_frame, **observed)
    busy = pd.DataFrame(twin.busy_log, columns=["crew", "start_min", "end_min"])
    busy[["start_min", "end_min"]] -= offset
    crews_per_shift = [
        sum(1 for c in twin.crews if c.shift == s) for s in range(len(scenario.crews.shifts))
    ]
    minutes = run.days * 1440  # utilisation over the measured period
    on_duty = on_duty_per_minute(scenario, crews_per_shift, minutes)
    busy_min = busy_per_minute(busy, minutes)
    utilisation = (
        float(np.minimum(busy_min, on_duty).sum() / on_duty.sum())
        if on_duty.sum()
        else float("nan")
    )

    per_kel = kpis_by(kpi_frame, "kelurahan", **observed).reindex(table["kode_kemendagri"])
    per_kel["reports"] = per_kel["reports"].fillna(0).astype(int)
    per_kel.insert(0, "kelurahan_name", table["kelurahan"].to_numpy())
    per_kel.insert(1, "kota", table["kota"].to_numpy())
    per_kel["crews"] = [sum(1 for c in twin.crews if c.home == k) for k in range(city.n_kelurahan)]
    per_kel = rank_kelurahan(per_kel.rename_axis("kelurahan_code"), min_reports=MIN_RANKED_REPORTS)
    ranked = per_kel[per_kel["rank"] > 0]

    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": run.seed,
        "replication": replication,
        "days": run.days,
        "warm_up_days": run.warm_up_days,
        "follow_up_days": run.follow_up_days,
        **kpis,
        "crew_utilisation": utilisation,
        "crews": len(twin.crews),
        "dispatch": scenario.crews.dispatch,
        "pooling": scenario.crews.pooling,
        "travel_km": float(twin.timeline.travel_km.sum() + twin.return_km),
        "outcomes": {name: int((outcomes[cohort] == i).sum()) for i, name in enumerate(OUTCOMES)},
        "never_picked_up": {
            "abandoned": int(twin.desks.abandoned[cohort].sum()),
            "residual": int((f["outcome"].to_numpy()[cohort] == UNANSWERED).sum()),
        },
        "desk_staff": int(twin.staff.sum()),
        "desk_utilisation": desk_utilisation(twin, f, offset, run.days),
        "ppsu_overtime_h": twin.ppsu.teams.overtime_min / 60.0,
        "agency_utilisation": twin.agencies.busy_share(offset, offset + run.days * 1440.0),
        "decomposition": decompose(out),
        "by_kota": kpis_by(kpi_frame, "kota", **observed)[
            ["reports", "mean_resolution_h", "resolved_share"]
        ].to_dict(orient="index"),
        "by_category": kpis_by(kpi_frame, "category", **observed)[
            ["reports", "mean_resolution_h", "resolved_share"]
        ].to_dict(orient="index"),
        "best_15": _named(ranked.head(15)),
        "worst_15": _named(ranked.tail(15).iloc[::-1]),
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


def _named(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Ranked kelurahan as code, name and kota (a summary names what it ranks)."""
    return [
        {
            "code": str(code),
            "name": str(row["kelurahan_name"]),
            "kota": str(row["kota"]),
            "rank": int(row["rank"]),
        }
        for code, row in rows.iterrows()
    ]
