"""A warm start: the twin begins at a moment of the real system, with its open reports in hand.

The state comes as one row per open report (the *records*, `OPEN_REPORT_COLUMNS`, read from the
intake database by the composition root: `twin` never imports `intake`). Each report goes to the
twin's stage that its intake status stands for (`stage_of`):

========== ================================ ==============================================
status     stage                            in the twin
========== ================================ ==============================================
menunggu   ``desk``: waiting for the desk   joins its desk's queue; received when it was
koordinasi ``coordinated``                  coordinated; routed now (PPSU or an agency)
disposisi  ``ppsu_queue`` (a crew is named) waits for a PPSU crew
disposisi  ``agency`` (an agency is named)  with the agency: hand-over, then its teams
proses     ``in_hand``: claimed by a crew   a crew finishes it (residual work)
selesai    closed                           not open: not part of the state
========== ================================ ==============================================

Intake closes a report when the officer resolves it with the proof photo (``selesai``), so no
open report waits for verification. The twin's clock starts at midnight (Asia/Jakarta) of the
as-of day and the run begins at the as-of minute (`WarmStart.start_min`, a SimPy initial time):
the desks' calendar, shifts, and the demand model's hour, weekday and season are the real
ones. New reports come from the demand model from that minute on; the real ones received
before it are the records.

Durations already under way are drawn conditional on the time spent (residual distributions):
an agency's hand-over given the time since coordination, a claimed job's work given the time
since the claim, a desk's patience given the wait so far. A fresh draw would forget that a
report already 20 hours with an agency is likely a long one.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from twin.entities import STATUSES
from twin.errors import ScenarioError
from twin.model.changes import with_changes
from twin.model.demand import (
    AGENCY,
    DUPLICATE,
    INVALID,
    PPSU,
    Reports,
    generate_reports,
    sample,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from twin.city.assembly import City
    from twin.model.parameters import Distribution
    from twin.model.scenario import Scenario
    from twin.model.streams import RandomStreams

TIMEZONE = "Asia/Jakarta"
OPEN_REPORT_COLUMNS = (
    "report_id", "kelurahan_code", "category", "status", "received_at", "coordinated_at",
    "status_at", "crew", "agency", "lat", "lon",
)  # fmt: skip
"""The records of open reports a warm start reads: times are timezone-aware (UTC),
``coordinated_at`` NaT when not yet coordinated, ``status_at`` when the report entered its
status, ``crew``/``agency`` the disposition (None when not disposed)."""

STAGES = ("desk", "coordinated", "ppsu_queue", "agency", "in_hand")
PAST_DESK = ("coordinated", "ppsu_queue", "agency", "in_hand")


def stage_of(status: str, crew: str | None, agency: str | None) -> str | None:
    """The twin's stage of an intake report (None: closed, not part of the state).

    Raises
    ------
    ScenarioError
        For a status intake does not have.
    """
    if status == "menunggu":
        return "desk"
    if status == "koordinasi":
        return "coordinated"
    if status == "disposisi":
        return "agency" if _named(agency) and not _named(crew) else "ppsu_queue"
    if status == "proses":
        return "in_hand"
    if status == "selesai":
        return None
    raise ScenarioError(f"unknown status {status!r}: the twin knows {', '.join(STATUSES)}")


def _named(value: object) -> bool:
    """A crew or agency is named (None, NaN or blank: not)."""
    return isinstance(value, str) and bool(value.strip())


def agency_key(name: str) -> str:
    """An agency's name as the scenario spells its key: "Dinas Bina Marga" -> ``bina_marga``."""
    words = name.lower().replace(".", " ").replace("-", " ").replace("_", " ").split()
    return "_".join(w for w in words if w not in ("dinas", "suku", "sudin", "kota", "provinsi"))


def check_records(city: City, scenario: Scenario, records: pd.DataFrame) -> None:
    """Refuse, with one line naming the first offending record, a status, kelurahan or category
    the twin or the scenario does not have (before any replication starts)."""
    kelurahan = set(map(str, city.kelurahan.codes))
    if scenario.run.only_kelurahan:
        kelurahan &= set(scenario.run.only_kelurahan)
    categories = set(scenario.demand.categories)
    for rid, status, code, cat in zip(
        records["report_id"], records["status"], records["kelurahan_code"], records["category"],
        strict=True,
    ):  # fmt: skip
        if status not in STATUSES:
            raise ScenarioError(
                f"report {rid}: unknown status {status!r}; the twin knows {', '.join(STATUSES)}"
            )
        if str(code) not in kelurahan:
            raise ScenarioError(f"report {rid}: kelurahan {code!r} is not in the scenario's city")
        if str(cat) not in categories:
            raise ScenarioError(f"report {rid}: category {cat!r} is not in the scenario")


def residual(
    dist: Distribution, elapsed: NDArray[np.float64], u: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Whole durations (minutes) given that each lasted `elapsed` already: X | X > elapsed.

    By the inverse of the survival function: X = S^-1(u S(elapsed)) with `u` uniform on (0, 1],
    exact for the lognormal; the exponential is memoryless (elapsed + a fresh draw); a fixed
    duration already over ends now.
    """
    elapsed = np.maximum(np.asarray(elapsed, float), 0.0)
    if dist.dist == "fixed" or dist.mean_min == 0:
        return np.maximum(dist.mean_min, elapsed)
    if dist.dist == "exponential":
        return elapsed - dist.mean_min * np.log(u)
    sigma2 = math.log1p((dist.sd_min / dist.mean_min) ** 2)
    mu, sigma = math.log(dist.mean_min) - sigma2 / 2, math.sqrt(sigma2)
    with np.errstate(divide="ignore"):  # log(0) = -inf: nothing spent, S = 1
        survive = special.ndtr(-(np.log(elapsed) - mu) / sigma)
    total = np.exp(mu - sigma * special.ndtri(u * survive))
    return np.where(np.isfinite(total), np.maximum(total, elapsed), elapsed)


@dataclass(frozen=True, slots=True)
class WarmStart:
    """Where each report of a warm-started run stands at its start.

    Attributes
    ----------
    start_min
        The clock's start (minutes from midnight of the run's first day).
    past_desk
        Per report: already coordinated (it skips the desk).
    coordinated_min
        Per report: when it was coordinated (NaN: not yet).
    ready_min
        Per report past the desk: when its job joins its team's queue (now, or after the
        residual hand-over of an agency).
    """

    start_min: float
    past_desk: NDArray[np.bool_]
    coordinated_min: NDArray[np.float64]
    ready_min: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LiveState:
    """A warm start ready to run: the scenario on the as-of calendar, the reports (open records
    first, then the demand model's new ones), where each stands, and the run's end."""

    scenario: Scenario
    reports: Reports
    warm: WarmStart
    until_min: float
    record_rows: NDArray[np.int64]
    as_of: pd.Timestamp

    @property
    def n_open(self) -> int:
        """The open records: the first rows of the reports."""
        return len(self.record_rows)


def clock_of(as_of: pd.Timestamp, hours: float) -> tuple[str, float, int]:
    """The run's start date (Jakarta), the as-of minute on its clock, and the days it spans."""
    local = as_of.tz_convert(TIMEZONE)
    midnight = local.normalize()
    start_min = (local - midnight) / pd.Timedelta(minutes=1)
    days = math.ceil((start_min + hours * 60) / 1440)
    return midnight.date().isoformat(), float(start_min), days


def on_calendar(scenario: Scenario, start_date: str, days: int) -> Scenario:
    """`scenario` run for `days` from `start_date`, its dated inputs kept on their dates.

    Flood days (day numbers of the scenario's own run) that fall in the new run keep their date;
    dated changes up to the start are in force from it (folded into the base values in date
    order, whatever the field: `twin.model.changes.with_changes`), later ones inside the run
    stay, and the rest are dropped.
    """
    import dataclasses

    first = dt.date.fromisoformat(start_date)
    last = first + dt.timedelta(days=days - 1)
    own = dt.date.fromisoformat(scenario.run.start_date)
    flood = tuple(
        (own + dt.timedelta(days=d) - first).days
        for d in scenario.demand.flood.days
        if first <= own + dt.timedelta(days=d) <= last
    )
    changes = sorted(scenario.changes, key=lambda c: c.date)
    folded = with_changes(
        dataclasses.replace(scenario, changes=()),
        [c for c in changes if dt.date.fromisoformat(c.date) <= first],
    )
    kept = tuple(c for c in changes if first < dt.date.fromisoformat(c.date) <= last)
    run = dataclasses.replace(
        scenario.run, start_date=start_date, days=days, warm_up_days=0, follow_up_days=0
    )
    demand = dataclasses.replace(
        folded.demand, flood=dataclasses.replace(scenario.demand.flood, days=flood)
    )
    return dataclasses.replace(folded, run=run, demand=demand, changes=kept)


def live_state(
    city: City,
    scenario: Scenario,
    records: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    hours: float,
    streams: RandomStreams,
) -> LiveState:
    """Build the twin's state at `as_of` from the open `records` and run it `hours` ahead.

    Raises
    ------
    ScenarioError
        A record with a status, kelurahan or category the scenario does not have (one line
        naming the record and the value).
    """

    start_date, start_min, days = clock_of(as_of, hours)
    scenario = on_calendar(scenario, start_date, days)
    new = generate_reports(city, scenario, streams)
    frame = new.frame[new.frame["received_min"] >= start_min]  # earlier ones are the records
    old, record_rows = _record_rows(city, scenario, new, records, as_of, start_min, streams)
    both = pd.concat([old.frame, frame], ignore_index=True)
    reports = Reports(frame=both, categories=new.categories, channels=new.channels)
    n_old = len(old.frame)
    stage = old.frame.attrs["stage"]
    past = np.zeros(len(both), dtype=bool)
    past[:n_old] = np.isin(stage, PAST_DESK)
    coordinated = np.full(len(both), np.nan)
    coordinated[:n_old] = old.frame.attrs["coordinated_min"]
    ready = np.full(len(both), np.nan)
    ready[:n_old] = np.where(
        stage == "agency",
        np.maximum(start_min, coordinated[:n_old] + old.frame["handover_min"].to_numpy()),
        start_min,
    )
    ready[:n_old][~past[:n_old]] = np.nan
    warm = WarmStart(start_min, past, coordinated, ready)
    return LiveState(scenario, reports, warm, start_min + hours * 60, record_rows, as_of)


def _record_rows(
    city: City,
    scenario: Scenario,
    new: Reports,
    records: pd.DataFrame,
    as_of: pd.Timestamp,
    start_min: float,
    streams: RandomStreams,
) -> tuple[Reports, NDArray[np.int64]]:
    """The open records as rows of a `Reports` frame, with their draws (residual where under way),
    in order of receipt, and the row of `records` each came from."""
    r = records.reset_index(drop=True)
    n = len(r)
    stage = np.array([stage_of(s, c, a) for s, c, a in zip(r["status"], r["crew"], r["agency"], strict=True)], dtype=object)  # fmt: skip
    kel_of = {str(code): i for i, code in enumerate(city.kelurahan.codes)}
    cat_of = {name: i for i, name in enumerate(new.categories)}
    agency_of = {agency_key(name): i for i, name in enumerate(scenario.agencies)}
    kelurahan = np.empty(n, dtype=np.int64)
    category = np.empty(n, dtype=np.int64)
    for j, (rid, code, cat) in enumerate(zip(r["report_id"], r["kelurahan_code"], r["category"], strict=True)):  # fmt: skip
        if str(code) not in kel_of:
            raise ScenarioError(f"report {rid}: kelurahan {code!r} is not in the scenario's city")
        if str(cat) not in cat_of:
            raise ScenarioError(f"report {rid}: category {cat!r} is not in the scenario")
        kelurahan[j], category[j] = kel_of[str(code)], cat_of[str(cat)]

    def minutes(col: str) -> NDArray[np.float64]:  # on the run's clock; NaN for NaT
        t = pd.to_datetime(r[col], utc=True)
        return np.asarray(
            start_min - ((as_of - t) / pd.Timedelta(minutes=1)).to_numpy(float), np.float64
        )

    received = minutes("received_at")
    since = minutes("status_at")
    coordinated = minutes("coordinated_at")
    past = np.isin(stage, PAST_DESK)
    coordinated = np.where(past & ~np.isfinite(coordinated), since, coordinated)
    coordinated[~past] = np.nan

    # outcome: by the stage, else the routing of the category
    routed = streams.get("warm.routing").random(n)
    names = list(scenario.agencies)
    agency = np.full(n, -1, dtype=np.int64)
    with_agency = (stage == "agency") | (
        (stage == "in_hand")
        & np.array(
            [_named(a) and not _named(c) for a, c in zip(r["agency"], r["crew"], strict=True)],
            dtype=bool,
        )
    )
    for j in range(n):
        shares = np.array(
            [scenario.routing[new.categories[category[j]]].get(a, 0.0) for a in names]
        )
        if with_agency[j]:  # the named agency, else the category's main agency
            named = agency_of.get(agency_key(str(r["agency"][j])))
            agency[j] = named if named is not None else int(np.argmax(shares)) if len(names) else -1
        elif stage[j] in ("desk", "coordinated"):
            pick = np.searchsorted(np.cumsum(shares), routed[j], side="right")
            agency[j] = pick if pick < len(names) else -1
    if with_agency.any() and not names:
        raise ScenarioError("a report is with an agency but the scenario has no agencies")
    outcome = np.where(agency >= 0, AGENCY, PPSU)
    # a report still waiting for the desk may turn out invalid or a duplicate; one past it not
    triage = streams.get("warm.triage").random(n)
    d = scenario.demand
    waiting = stage == "desk"
    outcome[waiting & (triage < d.invalid_share + d.duplicate_share)] = DUPLICATE
    outcome[waiting & (triage < d.invalid_share)] = INVALID

    c, k = scenario.coordination, scenario.crews
    u = streams.get("warm.residual").random((3, n))
    u = 1.0 - u  # on (0, 1]
    work = np.zeros(n)
    for i, name in enumerate(new.categories):
        pick = category == i
        draws = sample(k.work[name], streams.get(f"warm.work.{name}"), n)
        claimed = residual(k.work[name], start_min - since, u[0]) - (start_min - since)
        work[pick] = np.where(stage[pick] == "in_hand", claimed[pick], draws[pick])
    handover = np.zeros(n)
    for j, (name, a) in enumerate(scenario.agencies.items()):
        pick = agency == j
        whole = residual(a.handover, start_min - np.nan_to_num(coordinated, nan=start_min), u[1])
        fresh = sample(a.handover, streams.get(f"warm.agency.{name}.handover"), n)
        handover[pick] = np.where(stage[pick] == "agency", whole[pick], fresh[pick])
    patience = (
        residual(_exponential(c.patience_h * 60), start_min - received, u[2])
        if c.patience_h > 0
        else np.full(n, np.inf)
    )
    node, dist_m = _snap(city, r["lon"].to_numpy(float), r["lat"].to_numpy(float), kelurahan)
    frame = pd.DataFrame(
        {
            "submitted_min": received,
            "received_min": received,
            "kelurahan": kelurahan,
            "node": node,
            "lon": r["lon"].to_numpy(float),
            "lat": r["lat"].to_numpy(float),
            "access_m": dist_m,
            "category": category,
            "channel": np.zeros(n, dtype=np.int64),
            "outcome": outcome,
            "handling_min": sample(c.handling, streams.get("warm.coordination"), n),
            "agency": agency,
            "handover_min": handover,
            "wait_min": np.zeros(n),
            "work_min": work,
            "verify_min": sample(k.verify_delay, streams.get("warm.verification"), n),
            "rework_u": np.ones(n),  # a job under way is not sent back
            "patience_min": patience,
            "flood": np.zeros(n, dtype=bool),
        }
    )
    order = np.argsort(received, kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    frame.attrs["stage"] = stage[order]
    frame.attrs["coordinated_min"] = coordinated[order]
    return Reports(frame=frame, categories=new.categories, channels=new.channels), order


def _exponential(mean_min: float) -> Distribution:
    from twin.model.parameters import Distribution

    return Distribution("exponential", mean_min, mean_min)


def _snap(
    city: City, lon: NDArray[np.float64], lat: NDArray[np.float64], kelurahan: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The nearest road node of each report's own kelurahan (-1 where it has none)."""
    node = np.full(len(lon), -1, dtype=np.int64)
    dist = np.zeros(len(lon))
    node_kel = city.node_kelurahan
    for k in np.unique(kelurahan):
        members = np.flatnonzero(node_kel == k)
        pick = np.flatnonzero(kelurahan == k)
        if not len(members):
            continue
        dx = (city.network.node_x[members][None, :] - lon[pick, None]) * np.cos(
            np.radians(lat[pick, None])
        )
        dy = city.network.node_y[members][None, :] - lat[pick, None]
        d2 = dx * dx + dy * dy
        best = np.argmin(d2, axis=1)
        node[pick] = members[best]
        dist[pick] = np.sqrt(d2[np.arange(len(pick)), best]) * 111_320.0
    return node, dist
