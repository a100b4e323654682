"""Agencies (OPD): reports the desk hands to a Dinas, answered by its field teams per kota.

After the desk's hand-over (Disposisi) a job reaches the agency's queue in the report's kota
after a hand-over delay (letters, scheduling). The agency's teams in that kota (its Suku Dinas)
take jobs first come, first served, during their working hours and days, ride from the kota base
over the road network (`stages.riding`), and work on site for the report's category work time.
A job that spans days (material or a permit to wait for) frees the team after the first visit
and returns to the queue after its wait; the report closes when the last visit's work is done.

The base of each kota is the kelurahan office nearest the mean position of the kota's kelurahan
offices: a documented stand-in for the Suku Dinas office, whose addresses are not in the data.

Dated changes (`twin.model.changes`): ``agencies.<name>.teams_per_kota`` resizes every kota's pool of
the agency at 00:00 of its date (`change`; new teams start at the kota base, leaving teams finish
the job in hand); ``agencies.<name>.handover.mean_min`` rescales the hand-over of the agency's
reports coordinated from its date (`handover_delays`): each report's draw at the scenario's mean
times the mean in force over the scenario's, so a run without the change keeps its draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twin.model.calendar import WorkingCalendar
from twin.model.changes import agency_of, schedule
from twin.model.demand import AGENCY
from twin.model.dispatch import FifoPolicy
from twin.model.stages.teams import Crew, FieldTeams, Job, Place, Pool

if TYPE_CHECKING:
    import simpy
    from numpy.typing import NDArray

    from twin.city.assembly import City
    from twin.model.demand import Reports
    from twin.model.scenario import Scenario
    from twin.model.stages.riding import Rider
    from twin.model.stages.teams import Timeline


def kota_bases(city: City) -> tuple[NDArray[np.int64], list[Place]]:
    """Each kelurahan's kota number, and each kota's base (see the module docstring)."""
    kota = city.table["kota"].astype(str).to_numpy()
    names, kota_of = np.unique(kota, return_inverse=True)
    depots = city.depots
    lon, lat = depots["lon"].to_numpy(), depots["lat"].to_numpy()
    bases = []
    for k in range(len(names)):
        members = np.flatnonzero(kota_of == k)
        d2 = (lon[members] - lon[members].mean()) ** 2 + (lat[members] - lat[members].mean()) ** 2
        row = int(members[np.argmin(d2)])
        has_roads = bool(city.kelurahan_has_roads[row])
        bases.append(
            Place(
                int(depots["node"].iloc[row]) if has_roads else -1,
                float(lon[row]),
                float(lat[row]),
                float(depots["snap_m"].iloc[row]) if has_roads else 0.0,
                bool(city.is_seribu[row]),
            )
        )
    return kota_of.astype(np.int64), bases


class Agencies:
    """Every agency's field teams, one pool per agency and kota.

    Parameters
    ----------
    env, rider, timeline
        The run's environment, ride times and per-report record.
    city, scenario, reports
        The city, the scenario and the run's reports.
    """

    def __init__(
        self,
        env: simpy.Environment,
        rider: Rider,
        timeline: Timeline,
        city: City,
        scenario: Scenario,
        reports: Reports,
    ) -> None:
        self.env = env
        self.timeline = timeline
        self.names = list(scenario.agencies)
        kota_of, bases = kota_bases(city)
        run = scenario.run
        self.teams: list[FieldTeams] = []
        self._pools: list[list[Pool]] = []
        self._bases = bases
        for a in scenario.agencies.values():
            calendar = WorkingCalendar(
                run.start_date, run.days, a.open_h, a.close_h, a.working_days,
                closed_on_holidays=a.closed_on_holidays,
            )  # fmt: skip
            teams = FieldTeams(
                env, rider, timeline, ((a.open_h, a.close_h),), self._visit_done,
                works_on=calendar.works_on,
            )  # fmt: skip
            pools = [Pool(FifoPolicy(rider.ride_s)) for _ in bases]  # type: ignore[arg-type]
            teams.pool_of_kelurahan = [pools[k] for k in kota_of]
            for k, base in enumerate(bases):
                for _ in range(a.teams_per_kota):
                    teams.add_crew(pools[k], -1, 0, base)
            teams.close_roster(pools)
            self.teams.append(teams)
            self._pools.append(pools)
        f = reports.frame
        self._agency = f["agency"].to_numpy()
        self._handover = f["handover_min"].tolist()
        self._jobs = self._make_jobs(city, reports)
        self._roster = [  # (day, teams per kota) of each agency from day 0 on
            [(day, int(v)) for day, v in schedule(scenario, f"agencies.{name}.teams_per_kota")]
            for name in self.names
        ]
        # per agency with dated hand-over changes: (minute, factor) from the clock's start on
        self._factors: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
        for j, (name, a) in enumerate(scenario.agencies.items()):
            steps = schedule(scenario, f"agencies.{name}.handover.mean_min")
            if len(steps) > 1:
                self._factors[j] = (
                    np.array([day * 1440.0 for day, _ in steps]),
                    np.array([float(v) / a.handover.mean_min for _, v in steps]),
                )

    def _make_jobs(self, city: City, reports: Reports) -> dict[int, Job]:
        f = reports.frame
        rows = np.flatnonzero(f["outcome"].to_numpy() == AGENCY)
        g = f.iloc[rows]
        kelurahan = g["kelurahan"].to_numpy()
        columns = (
            rows,
            np.zeros(len(rows), dtype=np.int64),
            g["node"].to_numpy(),
            g["lon"].to_numpy(),
            g["lat"].to_numpy(),
            g["access_m"].to_numpy(),
            kelurahan,
            city.is_seribu[kelurahan],
            g["work_min"].to_numpy(),
            np.zeros(len(rows)),
            np.ones(len(rows)),
            np.zeros(len(rows), dtype=np.int64),
            g["wait_min"].to_numpy(),
        )
        return {job.index: job for job in map(Job, *(c.tolist() for c in columns))}

    @property
    def crews(self) -> list[Crew]:
        """Every agency team."""
        return [c for t in self.teams for c in t.crews]

    def handover_delays(
        self, rows: NDArray[np.int64], coordinated_min: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """The hand-over of reports `rows` coordinated at `coordinated_min`, minutes: each draw
        times the factor of the agency's mean in force then (1 without dated changes)."""
        delay = np.asarray(self._handover)[rows]
        agency = self._agency[rows]
        for j, (at, factor) in self._factors.items():
            pick = agency == j
            step = np.searchsorted(at, coordinated_min[pick], side="right") - 1
            delay[pick] = delay[pick] * factor[np.maximum(step, 0)]
        return delay

    def hand_over(self, i: int) -> None:
        """Report `i` is handed to its agency: its job joins the queue after the hand-over delay."""
        job = self._jobs[i]
        j = self._agency[i]
        teams = self.teams[j]
        delay = self._handover[i]
        if j in self._factors:
            at, factor = self._factors[j]
            delay *= float(factor[np.searchsorted(at, self.env.now, side="right") - 1])
        self.env.timeout(delay).callbacks.append(lambda _: teams.submit(job))

    def change(self, field: str, value: float | str) -> None:
        """A dated change (`twin.model.changes`): ``agencies.<name>.teams_per_kota`` takes
        `value` in every kota."""
        if not field.endswith(".teams_per_kota"):  # pragma: no cover - the registry routes
            raise ValueError(f"agencies cannot change {field} by an event")
        j = self.names.index(agency_of(field))
        teams, pools = self.teams[j], self._pools[j]
        for pool, base in zip(pools, self._bases, strict=True):
            teams.resize(pool, int(value), -1, base)
        teams.close_roster(pools)

    def submit(self, i: int) -> None:
        """Report `i`'s job joins its agency's queue now (the hand-over is over)."""
        self.teams[self._agency[i]].submit(self._jobs[i])

    def _visit_done(self, crew: Crew, job: Job) -> None:
        """The job closes, or waits for material or a permit and comes back for a second visit."""
        if job.wait_min > 0 and job.visits == 1:
            teams = self.teams[self._agency[job.index]]
            self.env.timeout(job.wait_min).callbacks.append(lambda _: teams.submit(job))
        else:
            self.timeline.closed_min[job.index] = self.env.now

    def start(self, days: int) -> None:
        """Start every agency's shifts."""
        for teams in self.teams:
            teams.start(days)

    def finish(self, until_min: float) -> None:
        """Close the teams' books at the end of the run."""
        for teams in self.teams:
            teams.finish(until_min)

    def busy_share(self, start_min: float, end_min: float) -> dict[str, float]:
        """Each agency's busy minutes over its team-minutes on duty between the two minutes."""
        out = {}
        for name, teams in zip(self.names, self.teams, strict=True):
            busy = sum(
                min(e, end_min) - max(s, start_min)
                for _, s, e in teams.busy_log
                if s < end_min and e > start_min
            )
            start_h, end_h = teams.shifts[0]
            days = range(int(start_min // 1440), int(np.ceil(end_min / 1440)))
            roster = self._roster[self.names.index(name)]
            on = sum(  # team-minutes on duty: the day's hours x the teams in force that day
                (end_h - start_h) * 60.0 * len(self._bases) * _in_force(roster, day)
                for day in days
                if teams.works_on is None or teams.works_on(day)
            )
            out[name] = busy / on if on else float("nan")
        return out


def _in_force(steps: list[tuple[int, int]], day: int) -> int:
    """The value of a ``(day, value)`` schedule on `day`."""
    value = steps[0][1]
    for first, v in steps:
        if first <= day:
            value = v
    return value
