"""Forecasts from the live state: replications of a warm-started run, breach probabilities,
backlog by hour, and the period's KPIs so far and at the horizon.

Replication r draws the new arrivals and the residual durations from the streams of (seed, r),
so replication r of two scenarios starts from the same state with the same draws (common random
numbers): `compare` pairs them.

A report *breaches* a clock within the horizon when its deadline (receipt + 6 h for
coordination, + 7 days for resolution) falls inside the horizon and the stage is not reached by
then. An open report whose deadline passed before the as-of moment has breached already: it is
flagged, not forecast. Per kelurahan the forecast gives the expected number of breaches within
the horizon (open and new reports) and the probability of at least one. Intervals are the
2.5-97.5 % quantiles across replications (where the outcome may land), besides the mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.kpis import SLA_COORDINATION_H, SLA_RESOLUTION_H, report_kpis
from twin.model.streams import RandomStreams

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from numpy.typing import NDArray

    from twin.city.assembly import City
    from twin.model.scenario import Scenario

FORECAST_KPIS = (
    "reports", "resolved_share", "mean_coordination_h", "share_coordinated_within_6h",
    "mean_resolution_h", "share_resolved_within_7d",
)  # fmt: skip
MAX_HOURS = 30 * 24


@dataclass(frozen=True, slots=True)
class LiveInput:
    """The real system at the as-of moment.

    Attributes
    ----------
    records
        The open reports (`twin.model.warm_start.OPEN_REPORT_COLUMNS`).
    period
        The period's reports seen at `as_of`: ``report_id, kelurahan, received_at,
        coordinated_at, closed_at`` (NaT: not reached).
    as_of
        The moment (timezone-aware).
    hours
        The horizon.
    """

    records: pd.DataFrame
    period: pd.DataFrame
    as_of: pd.Timestamp
    hours: float


@dataclass(frozen=True, slots=True)
class ForecastTask:
    """One replication of one scenario from the live state (picklable)."""

    label: str
    scenario: Scenario
    live: LiveInput
    replication: int
    data_dir: str | None


@dataclass(slots=True)
class ForecastRun:
    """One replication's outcome.

    Attributes
    ----------
    open_breach_6h, open_breach_7d
        Per open record (records' order): breaches within the horizon.
    kelurahan_6h, kelurahan_7d
        Breaches within the horizon per kelurahan (city order), open and new reports.
    backlog
        Open reports at the as-of moment and each hour after it.
    kpis
        The period's KPIs at the horizon (`FORECAST_KPIS`).
    """

    label: str
    replication: int
    open_breach_6h: NDArray[np.bool_]
    open_breach_7d: NDArray[np.bool_]
    open_closed_h: NDArray[np.float64]
    kelurahan_6h: NDArray[np.int64]
    kelurahan_7d: NDArray[np.int64]
    backlog: NDArray[np.int64]
    kpis: dict[str, float]


def hours_since_epoch(stamps: pd.Series) -> NDArray[np.float64]:  # type: ignore[type-arg]
    """Timezone-aware times as hours since the Unix epoch (NaN for NaT)."""
    epoch = pd.Timestamp(0, tz="UTC")
    hours = (pd.to_datetime(stamps, utc=True) - epoch) / pd.Timedelta(hours=1)
    return np.asarray(hours.to_numpy(float), np.float64)


def breaches(
    received: NDArray[np.float64],
    reached: NDArray[np.float64],
    limit: float,
    start: float,
    end: float,
) -> NDArray[np.bool_]:
    """Whose deadline (`received` + `limit`) falls in (start, end] without the stage reached by it."""
    deadline = received + limit
    return (deadline > start) & (deadline <= end) & ~(reached <= deadline)


def run_forecast(city: City, task: ForecastTask) -> ForecastRun:
    """Run one replication from the live state and measure it."""
    from twin.model.process import CityTwin
    from twin.model.warm_start import live_state

    live = task.live
    state = live_state(
        city, task.scenario, live.records, as_of=live.as_of, hours=live.hours,
        streams=RandomStreams(task.scenario.run.seed, task.replication),
    )  # fmt: skip
    twin = CityTwin(city, state.scenario, state.reports, warm=state.warm)
    twin.run(until_min=state.until_min)
    f = state.reports.frame
    received = f["received_min"].to_numpy()
    coordinated = twin.timeline.coordinated_min
    closed = twin.outcome_closed_min()
    start, end = state.warm.start_min, state.until_min
    b6 = breaches(received, coordinated, SLA_COORDINATION_H * 60, start, end)
    b7 = breaches(received, closed, SLA_RESOLUTION_H * 60, start, end)
    kel = f["kelurahan"].to_numpy()
    n_open = state.n_open
    back = np.zeros(n_open, dtype=np.int64)
    back[state.record_rows] = np.arange(n_open)  # record row -> state row

    hours = np.arange(int(np.floor(live.hours)) + 1)
    at = start + hours * 60.0
    done = np.sort(np.where(closed <= end, closed, np.inf))
    backlog = np.searchsorted(np.sort(received), at, side="right") - np.searchsorted(
        done, at, side="right"
    )

    # the period's KPIs at the horizon: the period's records with the simulated future, and the new
    as_of_h = float(hours_since_epoch(pd.Series([live.as_of]))[0])
    origin_h = as_of_h - start / 60.0  # hours since the epoch of the run clock's minute 0
    period = live.period
    pr = period.set_index("report_id")
    rec_ids = live.records["report_id"].to_numpy()
    sim_coord = pd.Series(origin_h + coordinated[:n_open][back] / 60.0, index=rec_ids)
    sim_closed = pd.Series(origin_h + closed[:n_open][back] / 60.0, index=rec_ids)
    frame = pd.DataFrame(
        {
            "received_h": hours_since_epoch(pr["received_at"]),
            "coordinated_h": hours_since_epoch(pr["coordinated_at"]),
            "closed_h": hours_since_epoch(pr["closed_at"]),
        },
        index=pr.index,
    )
    known = frame.index.intersection(pd.Index(rec_ids))
    frame.loc[known, "coordinated_h"] = frame.loc[known, "coordinated_h"].fillna(sim_coord[known])
    frame.loc[known, "closed_h"] = sim_closed[known]
    new = slice(n_open, None)
    frame = pd.concat(
        [
            frame,
            pd.DataFrame(
                {
                    "received_h": origin_h + received[new] / 60.0,
                    "coordinated_h": origin_h + coordinated[new] / 60.0,
                    "closed_h": origin_h + closed[new] / 60.0,
                }
            ),
        ],
        ignore_index=True,
    )
    end_h = origin_h + end / 60.0
    kpis = report_kpis(frame, end_h=end_h)
    return ForecastRun(
        task.label,
        task.replication,
        b6[:n_open][back],
        b7[:n_open][back],
        (closed[:n_open][back] - start) / 60.0,
        np.bincount(kel[b6], minlength=city.n_kelurahan),
        np.bincount(kel[b7], minlength=city.n_kelurahan),
        backlog.astype(np.int64),
        {k: float(kpis[k]) for k in FORECAST_KPIS},
    )


def run_forecast_task(task: ForecastTask) -> ForecastRun:
    """A replication in whatever process it lands (the city is loaded once per process)."""
    from twin.experiments.replications import cached_city

    return run_forecast(cached_city(task.scenario, task.data_dir), task)


def run_forecast_tasks(
    tasks: Sequence[ForecastTask],
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[ForecastRun]:
    """Every task, in task order: here, on a local process pool, or on a Dask cluster."""
    from twin.experiments.replications import run_everywhere

    return run_everywhere(
        run_forecast_task, tasks, workers=workers, dask_address=dask_address, progress=progress
    )


def _interval(values: NDArray[np.float64]) -> dict[str, float]:
    values = np.asarray(values, float)
    ok = values[np.isfinite(values)]
    if not len(ok):
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan")}
    lo, hi = np.percentile(ok, [2.5, 97.5])
    return {"mean": float(ok.mean()), "lo": float(lo), "hi": float(hi)}


def summarise(runs: Sequence[ForecastRun], live: LiveInput, city: City) -> dict[str, Any]:
    """Breach probabilities per open report and kelurahan, backlog by hour, KPIs so far and at
    the horizon, from one scenario's replications.

    Returns
    -------
    forecast
        ``reports`` (DataFrame per open record), ``kelurahan`` (DataFrame per kelurahan),
        ``backlog`` (DataFrame per hour), ``kpis_so_far``, ``kpis_forecast`` (mean, lo, hi).
    """
    r = live.records
    as_of_h = float(hours_since_epoch(pd.Series([live.as_of]))[0])
    received_h = hours_since_epoch(r["received_at"])
    age_h = as_of_h - received_h
    coordinated = r["coordinated_at"].notna().to_numpy()
    per_report = pd.DataFrame(
        {
            "report_id": r["report_id"].to_numpy(),
            "kelurahan_code": r["kelurahan_code"].astype(str).to_numpy(),
            "status": r["status"].to_numpy(),
            "age_h": age_h,
            "breached_6h_already": ~coordinated & (age_h > SLA_COORDINATION_H),
            "breached_7d_already": age_h > SLA_RESOLUTION_H,
            "p_breach_6h": np.mean([x.open_breach_6h for x in runs], axis=0) if len(r) else [],
            "p_breach_7d": np.mean([x.open_breach_7d for x in runs], axis=0) if len(r) else [],
            "p_closed_in_horizon": np.mean([np.isfinite(x.open_closed_h) for x in runs], axis=0)
            if len(r)
            else [],
        }
    )
    k6 = np.array([x.kelurahan_6h for x in runs])
    k7 = np.array([x.kelurahan_7d for x in runs])
    table = city.table
    already = per_report.groupby("kelurahan_code")[
        ["breached_6h_already", "breached_7d_already"]
    ].sum()
    kel = pd.DataFrame(
        {
            "kelurahan_name": table["kelurahan"].to_numpy(),
            "kota": table["kota"].to_numpy(),
            "open_now": per_report["kelurahan_code"]
            .value_counts()
            .reindex(table["kode_kemendagri"])
            .fillna(0)
            .astype(int)
            .to_numpy(),
            "expected_breaches_6h": k6.mean(axis=0),
            "p_any_breach_6h": (k6 > 0).mean(axis=0),
            "expected_breaches_7d": k7.mean(axis=0),
            "p_any_breach_7d": (k7 > 0).mean(axis=0),
        },
        index=pd.Index(table["kode_kemendagri"].astype(str), name="kelurahan_code"),
    )
    kel = kel.join(already.rename(columns=lambda c: c.replace("breached", "breached_open"))).fillna(
        {"breached_open_6h_already": 0, "breached_open_7d_already": 0}
    )
    backlog = np.array([x.backlog for x in runs], float)
    lo, hi = np.percentile(backlog, [2.5, 97.5], axis=0)
    hours = np.arange(backlog.shape[1])
    back = pd.DataFrame(
        {
            "hour": hours,
            "at": [live.as_of + pd.Timedelta(hours=int(h)) for h in hours],
            "backlog_mean": backlog.mean(axis=0),
            "backlog_lo": lo,
            "backlog_hi": hi,
        }
    )
    p = live.period
    so_far = report_kpis(
        pd.DataFrame(
            {
                "received_h": hours_since_epoch(p["received_at"]),
                "coordinated_h": hours_since_epoch(p["coordinated_at"]),
                "closed_h": hours_since_epoch(p["closed_at"]),
            }
        ),
        end_h=as_of_h,
    )
    return {
        "reports": per_report,
        "kelurahan": kel,
        "backlog": back,
        "kpis_so_far": {k: float(so_far[k]) for k in FORECAST_KPIS},
        "kpis_forecast": {k: _interval(np.array([x.kpis[k] for x in runs])) for k in FORECAST_KPIS},
    }


def compare_runs(a: Sequence[ForecastRun], b: Sequence[ForecastRun]) -> dict[str, Any]:
    """B minus A, paired by replication (same state, same draws): KPIs at the horizon and
    breaches within it, with the 95 % t-interval of the mean difference."""
    from scipy import stats

    def paired(x: NDArray[np.float64]) -> dict[str, float]:
        x = np.asarray(x, float)
        x = x[np.isfinite(x)]
        if len(x) < 2:
            return {
                "mean": float(x.mean()) if len(x) else float("nan"),
                "lo": float("nan"),
                "hi": float("nan"),
            }
        half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
        return {"mean": float(x.mean()), "lo": float(x.mean() - half), "hi": float(x.mean() + half)}

    by_rep = {x.replication: x for x in a}
    pairs = [(by_rep[y.replication], y) for y in b if y.replication in by_rep]
    out: dict[str, Any] = {
        k: paired(np.array([y.kpis[k] - x.kpis[k] for x, y in pairs])) for k in FORECAST_KPIS
    }
    out["breaches_6h"] = paired(
        np.array([y.kelurahan_6h.sum() - x.kelurahan_6h.sum() for x, y in pairs])
    )
    out["breaches_7d"] = paired(
        np.array([y.kelurahan_7d.sum() - x.kelurahan_7d.sum() for x, y in pairs])
    )
    return out
