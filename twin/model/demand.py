"""Demand: every report of a run, drawn up front from named streams.

Reports arrive as a non-homogeneous Poisson process whose rate is piecewise constant by the hour
(the day's rate x hour-of-day x day-of-week shape), sampled exactly: a Poisson count per hour,
times uniform within it. The day's rate is ``reports_per_day`` (with its dated changes) x the
month's seasonality x the public-holiday factor x a gamma day factor of mean 1 (a Poisson-gamma
mixture: overdispersed daily counts, so that peak days emerge). Each report's intrinsic attributes (place, category, channel, validity,
agency hand-over, work content) are drawn at creation from their own streams, so a change of
staffing or dispatch never changes which reports arrive (common random numbers).

Places: a kelurahan by weight (kota population spread over the kota by area, mixed with road
density), then a road node of that kelurahan and a short off-road distance ("on or near roads").
Kelurahan without road nodes get a uniform point inside the polygon. On flood days extra reports
come from flood-prone RW (the ``FLOODPRONE`` flag of the RW polygons).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from twin.city.kelurahan import M_PER_DEGREE
from twin.errors import DataError, ScenarioError
from twin.model.calendar import public_holidays

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from twin.city.assembly import City
    from twin.model.parameters import Distribution
    from twin.model.scenario import Scenario
    from twin.model.streams import RandomStreams

PPSU, AGENCY, INVALID, DUPLICATE, UNANSWERED = range(5)


def sample(dist: Distribution, rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """Draw `n` durations in minutes (never negative)."""
    if dist.dist == "fixed" or dist.mean_min == 0:
        return np.full(n, dist.mean_min)
    if dist.dist == "exponential":
        return rng.exponential(dist.mean_min, n)
    sigma2 = np.log1p((dist.sd_min / dist.mean_min) ** 2)
    return rng.lognormal(np.log(dist.mean_min) - sigma2 / 2, np.sqrt(sigma2), n)


@dataclass(slots=True)
class Reports:
    """All reports of a run as columns (one row per report, ordered by arrival at the CRM).

    Attributes
    ----------
    frame
        Columns: ``submitted_min, received_min, kelurahan, node, lon, lat, access_m, category,
        channel, outcome, agency, handling_min, handover_min, work_min, wait_min, verify_min,
        rework_u, patience_min, flood``.
    categories, channels
        Names behind the integer codes.
    """

    frame: pd.DataFrame
    categories: list[str]
    channels: list[str]


def kelurahan_weights(city: City, scenario: Scenario) -> NDArray[np.float64]:
    """Share of reports per kelurahan: population (kota figure spread by area) and road density."""
    table = city.table
    area = shapely.area(table.geometry.to_numpy())
    kota = table["kode_kota"].astype(str).to_numpy()
    population = _kota_population(city)
    pop = np.zeros(len(table))
    for code in np.unique(kota):
        in_kota = kota == code
        pop[in_kota] = population.get(code, 0.0) * area[in_kota] / area[in_kota].sum()
    if pop.sum() == 0:  # no population file: area stands in
        pop = area.copy()
    roads = np.bincount(city.node_kelurahan[city.node_kelurahan >= 0], minlength=len(table)).astype(
        float
    )
    w = scenario.demand.population_weight
    weights = w * pop / pop.sum() + (1 - w) * (
        roads / roads.sum() if roads.sum() else pop / pop.sum()
    )
    only = scenario.run.only_kelurahan
    if only:
        unknown = sorted(set(only) - set(city.kelurahan.codes))
        if unknown:
            raise ScenarioError(f"run.only_kelurahan: unknown kelurahan code {unknown[0]}")
        weights = np.where(np.isin(city.kelurahan.codes, only), np.maximum(weights, 1e-12), 0.0)
    return weights / weights.sum()


def _kota_population(city: City) -> dict[str, float]:
    path = city.paths.population
    if not path.is_file():
        return {}
    try:
        df = pd.read_csv(path, dtype={"kode_kemendagri": str})
        return {str(k): float(v) for k, v in zip(df["kode_kemendagri"], df["total"], strict=True)}
    except (KeyError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: needs columns kode_kemendagri and total ({exc})") from exc


def daily_rates(scenario: Scenario, rng: np.random.Generator) -> NDArray[np.float64]:
    """Mean reports on each day of the run: volume (with its dated changes) x month x holiday x
    a gamma day factor of mean 1 (overdispersion; drawn only when ``daily_cv`` > 0)."""
    d, run = scenario.demand, scenario.run
    rate = np.empty(run.days)
    steps = scenario.schedule("demand.reports_per_day")
    for k, (first, value) in enumerate(steps):
        rate[first : steps[k + 1][0] if k + 1 < len(steps) else run.days] = value
    start = dt.date.fromisoformat(run.start_date)
    month = np.array([(start + dt.timedelta(days=i)).month - 1 for i in range(run.days)])
    monthly = np.asarray(d.monthly_profile, float)
    rate *= (monthly / monthly.mean())[month]
    off = [day for day in public_holidays(run.start_date, run.days) if day < run.days]
    rate[off] *= d.holiday_factor
    if d.daily_cv > 0:
        shape = 1.0 / d.daily_cv**2
        rate *= rng.gamma(shape, 1.0 / shape, run.days)
    return rate


def arrival_times_min(
    rate_per_day: float, hourly: NDArray[np.float64], weekly: NDArray[np.float64], days: int,
    start_weekday: int, rng: np.random.Generator, day_mask: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:  # fmt: skip
    """Exact NHPP sampling with an hourly piecewise-constant rate, minutes from the start."""
    hours = np.arange(days * 24)
    weekday = (start_weekday + hours // 24) % 7
    rate_h = (
        rate_per_day / 24 * (hourly / hourly.mean())[hours % 24] * (weekly / weekly.mean())[weekday]
    )
    if day_mask is not None:
        rate_h = rate_h * day_mask[hours // 24]
    counts = rng.poisson(rate_h)
    starts = np.repeat(hours * 60.0, counts)
    return np.sort(starts + rng.uniform(0.0, 60.0, counts.sum()))


def generate_reports(city: City, scenario: Scenario, streams: RandomStreams) -> Reports:
    """Draw every report of the run (see the module docstring for the model)."""
    d, run = scenario.demand, scenario.run
    start_weekday = dt.date.fromisoformat(run.start_date).weekday()
    hourly = np.asarray(d.hourly_profile, float)
    weekly = np.asarray(d.weekly_profile, float)
    daily = daily_rates(scenario, streams.get("arrivals.daily"))
    base = arrival_times_min(
        1.0, hourly, weekly, run.days, start_weekday, streams.get("arrivals"), day_mask=daily
    )
    categories = list(d.categories)
    cat_p = np.array([d.categories[c] for c in categories], float)
    category = streams.get("category").choice(len(categories), len(base), p=cat_p / cat_p.sum())
    kel_w = kelurahan_weights(city, scenario)
    kelurahan = streams.get("location.kelurahan").choice(len(kel_w), len(base), p=kel_w)
    flood = np.zeros(len(base), dtype=bool)

    if d.flood.days and d.flood.multiplier > 1:
        mask = np.zeros(run.days)
        mask[list(d.flood.days)] = 1.0
        extra = arrival_times_min(
            d.flood.multiplier - 1, hourly, weekly, run.days, start_weekday,
            streams.get("arrivals.flood"), day_mask=mask * daily,
        )  # fmt: skip
        rng = streams.get("flood.place")
        flood_kel = flood_prone_kelurahan(city)
        if scenario.run.only_kelurahan:
            keep = np.isin(city.kelurahan.codes[flood_kel], scenario.run.only_kelurahan)
            flood_kel = flood_kel[keep] if keep.any() else np.flatnonzero(kel_w > 0)
        kel_extra = flood_kel[rng.integers(0, len(flood_kel), len(extra))]
        flood_cat = _flood_categories(
            categories, d.flood.flood_share, len(extra), streams.get("flood.category")
        )
        base = np.r_[base, extra]
        category = np.r_[category, flood_cat]
        kelurahan = np.r_[kelurahan, kel_extra]
        flood = np.r_[flood, np.ones(len(extra), dtype=bool)]

    n = len(base)
    node, lon, lat, access_m = place_reports(
        city, kelurahan, d.access_mean_m, streams.get("location.node")
    )
    channels = list(d.channels)
    ch_p = np.array([d.channels[c].share for c in channels], float)
    channel = streams.get("channel").choice(len(channels), n, p=ch_p / ch_p.sum())
    delay_mean = np.array([d.channels[c].entry_delay_min for c in channels])[channel]
    entry_delay = streams.get("channel.delay").exponential(1.0, n) * delay_mean

    triage = streams.get("triage").random(n)
    agency = route_reports(
        scenario, categories, category, streams.get("disposition").random(n), base // 1440
    )
    outcome = np.where(agency >= 0, AGENCY, PPSU)
    outcome[triage < d.invalid_share + d.duplicate_share] = DUPLICATE
    outcome[triage < d.invalid_share] = INVALID
    # never picked up, so never triaged either: its own stream keeps the others' draws (CRN)
    unanswered = streams.get("unanswered").random(n) < scenario.coordination.unanswered_share
    outcome[unanswered] = UNANSWERED

    c, k = scenario.coordination, scenario.crews
    work = np.zeros(n)
    for i, name in enumerate(categories):
        pick = category == i  # every category draws its whole run from its own stream
        draws = sample(k.work[name], streams.get(f"work.{name}"), n)
        work[pick] = draws[pick]

    # per destination: the agency's hand-over delay, and the wait of a job that spans days
    handover = np.zeros(n)
    second_share = np.full(n, k.second_day_share)
    wait = sample(k.second_day_wait, streams.get("ppsu.second_day.wait"), n)
    for j, (name, a) in enumerate(scenario.agencies.items()):
        pick = agency == j
        handover[pick] = sample(a.handover, streams.get(f"agency.{name}.handover"), n)[pick]
        wait[pick] = sample(a.second_visit_wait, streams.get(f"agency.{name}.wait"), n)[pick]
        second_share[pick] = a.second_visit_share
    wait[streams.get("second_visit").random(n) >= second_share] = 0.0

    frame = pd.DataFrame(
        {
            "submitted_min": base,
            "received_min": base + entry_delay,
            "kelurahan": kelurahan,
            "node": node,
            "lon": lon,
            "lat": lat,
            "access_m": access_m,
            "category": category,
            "channel": channel,
            "outcome": outcome,
            "handling_min": sample(c.handling, streams.get("coordination"), n),
            "agency": agency,
            "handover_min": handover,
            "wait_min": wait,
            "work_min": work,
            "verify_min": sample(k.verify_delay, streams.get("verification.delay"), n),
            "rework_u": streams.get("verification.rework").random(n),
            "patience_min": streams.get("desk.patience").exponential(1.0, n)
            * (c.patience_h * 60 if c.patience_h > 0 else np.inf),
            "flood": flood,
        }
    )
    # a report still in transit to the CRM at the end of the run never reaches this run
    frame = frame[frame["received_min"] < run.days * 1440.0]
    frame = frame.sort_values("received_min", kind="stable").reset_index(drop=True)
    return Reports(frame=frame, categories=categories, channels=channels)


def route_reports(
    scenario: Scenario,
    categories: list[str],
    category: NDArray[np.int64],
    u: NDArray[np.float64],
    day: NDArray[np.float64],
) -> NDArray[np.int64]:
    """Each report's agency (index into ``scenario.agencies``), or -1 for PPSU, by the routing
    table: uniform `u` falls into the category's cumulative agency shares (times the agency
    scale in force on the report's `day`), the rest is PPSU."""
    names = list(scenario.agencies)
    out = np.full(len(category), -1, dtype=np.int64)
    steps = scenario.schedule("coordination.agency_scale")  # dated changes of the scale
    for k, (first, scale) in enumerate(steps):
        last = steps[k + 1][0] if k + 1 < len(steps) else np.inf
        in_step = (day >= first) & (day < last)
        for i, name in enumerate(categories):
            route = scenario.routing[name]
            cum = np.cumsum([scale * route.get(a, 0.0) for a in names])
            pick = in_step & (category == i)
            dest = np.searchsorted(cum, u[pick], side="right")
            out[pick] = np.where(dest < len(names), dest, -1)
    return out


def _flood_categories(
    categories: list[str], flood_share: float, n: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    others = [categories.index(c) for c in ("drainage", "trees") if c in categories] or list(
        range(len(categories))
    )
    main = categories.index("flood") if "flood" in categories else others[0]
    return np.where(
        rng.random(n) < flood_share, main, np.asarray(others)[rng.integers(0, len(others), n)]
    )


def place_reports(
    city: City, kelurahan: NDArray[np.int64], access_mean_m: float, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A road node, a point near it and the off-road distance for each report.

    Reports in a kelurahan without road nodes get node -1 and a uniform point in the polygon.
    """
    n = len(kelurahan)
    u_node, u_dist, u_angle = (
        rng.random(n),
        rng.exponential(access_mean_m, n),
        rng.uniform(0, 2 * np.pi, n),
    )
    node_kel = city.node_kelurahan
    order = np.argsort(node_kel, kind="stable")
    counts = np.bincount(node_kel[node_kel >= 0], minlength=city.n_kelurahan)
    starts = np.searchsorted(node_kel[order], np.arange(city.n_kelurahan))
    has = counts[kelurahan] > 0
    node = np.full(n, -1, dtype=np.int64)
    node[has] = order[
        starts[kelurahan[has]] + (u_node[has] * counts[kelurahan[has]]).astype(np.int64)
    ]
    lon = np.empty(n)
    lat = np.empty(n)
    lon[has] = city.network.node_x[node[has]] + u_dist[has] * np.cos(u_angle[has]) / M_PER_DEGREE
    lat[has] = city.network.node_y[node[has]] + u_dist[has] * np.sin(u_angle[has]) / M_PER_DEGREE
    access = np.where(has, u_dist, 0.0)
    for k in np.unique(kelurahan[~has]):
        pick = np.flatnonzero(kelurahan == k)
        lon[pick], lat[pick] = _points_in_polygon(city.table.geometry.iloc[int(k)], len(pick), rng)
    return node, lon, lat, access


def _points_in_polygon(
    polygon: shapely.Geometry, n: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    minx, miny, maxx, maxy = polygon.bounds
    xs: list[NDArray[np.float64]] = []
    ys: list[NDArray[np.float64]] = []
    got = 0
    while got < n:  # rejection sampling from the bounding box
        x = rng.uniform(minx, maxx, 2 * n + 16)
        y = rng.uniform(miny, maxy, 2 * n + 16)
        inside = shapely.contains_xy(polygon, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        got += int(inside.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def flood_prone_kelurahan(city: City) -> NDArray[np.int64]:
    """Kelurahan row of every flood-prone RW (one entry per RW, so busier kelurahan repeat)."""
    from twin.city.geoio import read_vector

    rw = read_vector(
        city.paths.require(city.paths.rw),
        columns=("FLOODPRONE",),
        geom_types=("Polygon", "MultiPolygon"),
    )
    prone = rw[rw["FLOODPRONE"].astype(str).str.upper() == "YES"]
    if prone.empty:
        raise DataError(f"{city.paths.rw}: no RW is flagged FLOODPRONE=YES")
    points = prone.geometry.representative_point()
    kel = city.kelurahan.locate_many(points.x.to_numpy(), points.y.to_numpy())
    return kel[kel >= 0]
