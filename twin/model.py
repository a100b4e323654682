"""The SimPy model: kelurahan coordination, PPSU crews riding the road network, proof and closure.

A report's life follows Jakarta's statuses. It waits (Menunggu) until the kelurahan desk is open,
is coordinated (Koordinasi: the 6-hour clock), then is either closed as invalid or duplicate,
handed to an agency (Disposisi to an OPD, closed after the agency's delay), or dispatched to PPSU.
A PPSU job waits for a crew; the crew rides from where it is (Proses), works on site, uploads a
photo, and the desk verifies it (Selesai), sending it back for another visit now and then. A crew
then takes the next waiting job, or rides back to its depot.

Coordination and agency work need no shared resource in this model, so their times are computed
directly from each report's draws; only PPSU crews, which queue, are simulated event by event.
Crews are SimPy processes; each dispatch pool (a kelurahan, or a kecamatan when pooled) keeps its
own queue in its policy object. The clock unit is minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import simpy

from twin.demand import AGENCY, DUPLICATE, INVALID, PPSU
from twin.dispatch import POLICIES, DispatchPolicy
from twin.roads import EARTH_RADIUS_M

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from twin.city import City
    from twin.demand import Reports
    from twin.scenario import Scenario


def _metres(a: Crew | Job, b: Crew | Job) -> float:
    """Great-circle metres between two positions (scalar haversine: no numpy call overhead)."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin(math.radians(b.lon - a.lon) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def coordination_done_min(
    received: NDArray[np.float64], handling: NDArray[np.float64], scenario: Scenario
) -> NDArray[np.float64]:
    """When each report is coordinated: the desk's next open moment, plus the handling time."""
    c = scenario.coordination
    if not c.enabled:
        return received.copy()
    day = np.floor(received / 1440.0)
    minute = received - day * 1440.0
    open_m, close_m = c.office_open_h * 60, c.office_close_h * 60
    start = np.where(
        minute < open_m,
        day * 1440 + open_m,
        np.where(minute >= close_m, (day + 1) * 1440 + open_m, received),
    )
    return start + handling


@dataclass(slots=True, eq=False)
class Job:
    """A PPSU job in the simulation (a report dispatched to PPSU).

    Attributes
    ----------
    index
        Row of the report.
    rank
        Priority rank (0 most urgent) for the ``priority`` policy.
    node, lon, lat, access_m, kelurahan, seribu
        Where the job is.
    work_min, verify_min, rework_u
        The report's draws.
    """

    index: int
    rank: int
    node: int
    lon: float
    lat: float
    access_m: float
    kelurahan: int
    seribu: bool
    work_min: float
    verify_min: float
    rework_u: float
    visits: int = 0


@dataclass(slots=True, eq=False)
class Crew:
    """A PPSU crew.

    Attributes
    ----------
    crew_id
        Global crew number.
    home
        Kelurahan row of its depot.
    shift
        Index into the scenario's shifts.
    node, lon, lat, access_m, seribu
        Where it is now.
    """

    crew_id: int
    home: int
    shift: int
    node: int
    lon: float
    lat: float
    access_m: float
    seribu: bool
    pool: Pool | None = None
    job: Job | None = None
    wake: simpy.Event | None = None
    on_shift: bool = False
    idle: bool = False
    jobs_done: int = 0
    busy_min: float = 0.0

    @property
    def position(self) -> tuple[int, float, float]:
        """A hashable key of where the crew is (for timing each distinct position once)."""
        return (self.node, self.lon, self.lat)


@dataclass(slots=True, eq=False)
class Pool:
    """Crews that share one queue (a kelurahan, or a kecamatan when pooled)."""

    policy: DispatchPolicy
    crews: list[Crew] = field(default_factory=list)
    idle: list[Crew] = field(default_factory=list)


class CityTwin:
    """The PPSU part of the twin for one run.

    Parameters
    ----------
    city
        The loaded city.
    scenario
        The scenario.
    reports
        All reports of the run, with their draws.
    env
        A SimPy environment (a new one when None).
    """

    def __init__(
        self, city: City, scenario: Scenario, reports: Reports, env: simpy.Environment | None = None
    ) -> None:
        self.env = env or simpy.Environment()
        self.city = city
        self.scenario = scenario
        self.reports = reports
        f = reports.frame
        n = len(f)
        self.coordinated_min = coordination_done_min(
            f["received_min"].to_numpy(), f["handling_min"].to_numpy(), scenario
        )
        self.assigned_min = np.full(n, np.nan)
        self.arrived_min = np.full(n, np.nan)
        self.done_min = np.full(n, np.nan)
        self.closed_min = np.full(n, np.nan)
        self.crew_of = np.full(n, -1, dtype=np.int64)
        self.travel_km = np.zeros(n)
        self.visits = np.zeros(n, dtype=np.int64)
        self.busy_log: list[tuple[int, float, float]] = []  # (crew, start_min, end_min)

        s = city.speeds
        self._congestion = list(s.congestion_by_hour)
        self._access_s_per_m = s.detour_factor / (s.access_speed_kph / 3.6)
        self._land_s_per_m = s.detour_factor / (s.default_speed_kph / 3.6)
        self._boat_s_per_m = 1.0 / (s.boat_speed_kph / 3.6)
        self._travel = scenario.crews.travel
        self._time_s = city.tables.time_s
        self._region = city.tables.region_of_node
        self._build_crews()

    # --- travel --------------------------------------------------------------------------------

    def ride_s(self, crew: Crew | Job, job: Job | Crew) -> float:
        """Seconds for a crew to ride from where `crew` is to where `job` is, at the current hour."""
        if not self._travel:
            return 0.0
        factor = self._congestion[int(self.env.now // 60) % 24]
        a, b = crew.node, job.node
        if a >= 0 and b >= 0 and self._region[a] == self._region[b]:
            return (
                self._time_s(a, b) * factor + (crew.access_m + job.access_m) * self._access_s_per_m
            )
        metres = _metres(crew, job)
        if crew.seribu or job.seribu:
            return metres * self._boat_s_per_m
        return metres * self._land_s_per_m * factor

    # --- set-up --------------------------------------------------------------------------------

    def _build_crews(self) -> None:
        sc, city = self.scenario, self.city
        policy_cls = POLICIES[sc.crews.dispatch]
        depots = city.depots
        seribu = city.is_seribu
        per_kel = sc.crews.crews_per_kelurahan
        active = np.ones(city.n_kelurahan, dtype=bool)
        if sc.run.only_kelurahan:
            active = np.isin(city.kelurahan.codes, sc.run.only_kelurahan)
        key = (
            city.kelurahan_region
            if sc.crews.pooling == "kecamatan"
            else np.arange(city.n_kelurahan)
        )
        self.pool_of_kelurahan: list[Pool] = []
        pools: dict[int, Pool] = {}
        self.crews: list[Crew] = []
        n_shifts = len(sc.crews.shifts)
        for k in range(city.n_kelurahan):
            pool = pools.setdefault(int(key[k]), Pool(policy_cls(self.ride_s)))  # type: ignore[arg-type]
            self.pool_of_kelurahan.append(pool)
            if not active[k]:
                continue
            row = depots.iloc[k]
            has_roads = bool(city.kelurahan_has_roads[k])
            for i in range(per_kel):
                crew = Crew(
                    crew_id=len(self.crews),
                    home=k,
                    shift=i % n_shifts,
                    node=int(row["node"]) if has_roads else -1,
                    lon=float(row["lon"]),
                    lat=float(row["lat"]),
                    access_m=float(row["snap_m"]) if has_roads else 0.0,
                    seribu=bool(seribu[k]),
                    pool=pool,
                )
                pool.crews.append(crew)
                self.crews.append(crew)
        self.depot = {c.crew_id: (c.node, c.lon, c.lat, c.access_m) for c in self.crews}

    def _jobs(self) -> list[tuple[float, Job]]:
        f = self.reports.frame
        ppsu = np.flatnonzero(f["outcome"].to_numpy() == PPSU)
        order = self.scenario.crews.priority_order
        rank_of = np.array(
            [order.index(c) if c in order else len(order) for c in self.reports.categories]
        )
        seribu = self.city.is_seribu
        cols = {
            c: f[c].to_numpy()
            for c in (
                "node",
                "lon",
                "lat",
                "access_m",
                "kelurahan",
                "category",
                "work_min",
                "verify_min",
                "rework_u",
            )
        }
        ready = self.coordinated_min[ppsu]
        jobs = [
            (
                float(ready[j]),
                Job(
                    index=int(i),
                    rank=int(rank_of[cols["category"][i]]),
                    node=int(cols["node"][i]),
                    lon=float(cols["lon"][i]),
                    lat=float(cols["lat"][i]),
                    access_m=float(cols["access_m"][i]),
                    kelurahan=int(cols["kelurahan"][i]),
                    seribu=bool(seribu[cols["kelurahan"][i]]),
                    work_min=float(cols["work_min"][i]),
                    verify_min=float(cols["verify_min"][i]),
                    rework_u=float(cols["rework_u"][i]),
                ),
            )
            for j, i in enumerate(ppsu)
        ]
        jobs.sort(key=lambda rj: rj[0])
        return jobs

    # --- processes -----------------------------------------------------------------------------

    def feed_jobs(self, jobs: list[tuple[float, Job]]) -> simpy.events.ProcessGenerator:
        """Hand each PPSU job to its pool when coordination is done."""
        env = self.env
        for ready, job in jobs:
            if ready > env.now:
                yield env.timeout(ready - env.now)
            self.submit(job)

    def submit(self, job: Job) -> None:
        """A job is ready: the policy gives it an idle crew, or queues it."""
        pool = self.pool_of_kelurahan[job.kelurahan]
        if pool.idle:
            crew = pool.policy.choose_crew(pool.idle, job)  # type: ignore[arg-type]
            self._assign(crew, job)  # type: ignore[arg-type]
        else:
            pool.policy.push(job)  # type: ignore[arg-type]

    def _assign(self, crew: Crew, job: Job) -> None:
        assert crew.pool is not None
        crew.pool.idle.remove(crew)
        crew.idle = False
        crew.job = job
        if crew.wake is not None and not crew.wake.triggered:
            crew.wake.succeed()

    def _make_idle(self, crew: Crew) -> None:
        """Take a waiting job, or join the idle list."""
        assert crew.pool is not None
        job = crew.pool.policy.pop_for(crew)  # type: ignore[arg-type]
        if job is not None:
            crew.job = job  # type: ignore[assignment]
            return
        crew.idle = True
        crew.pool.idle.append(crew)

    def run_crew(self, crew: Crew) -> simpy.events.ProcessGenerator:
        """A crew's working life: wait for a job, ride, work, upload proof, next job or home."""
        env = self.env
        verify = self.scenario.crews.verification
        proof_min = self.scenario.crews.proof_min
        while True:
            if crew.job is None:
                crew.wake = env.event()
                yield crew.wake
                crew.wake = None
            job = crew.job
            assert job is not None
            i = job.index
            start = env.now
            ride_min = self.ride_s(crew, job) / 60.0
            if job.visits == 0:
                self.assigned_min[i] = start
            job.visits += 1
            self.arrived_min[i] = start + ride_min
            self.travel_km[i] += self._km(crew, job)
            busy = ride_min + job.work_min + proof_min
            yield env.timeout(busy)
            self.busy_log.append((crew.crew_id, start, env.now))
            crew.busy_min += busy
            crew.jobs_done += 1
            crew.node, crew.lon, crew.lat, crew.access_m, crew.seribu = (
                job.node,
                job.lon,
                job.lat,
                job.access_m,
                job.seribu,
            )
            self.done_min[i] = env.now
            self.crew_of[i] = crew.crew_id
            self.visits[i] = job.visits
            if verify:
                env.process(self.verify(job))
            else:
                self.closed_min[i] = env.now
            crew.job = None
            if crew.on_shift:
                self._make_idle(crew)
                if crew.job is not None:
                    continue
                if crew.idle:  # ride home, unavailable on the way
                    crew.pool.idle.remove(crew)  # type: ignore[union-attr]
                    crew.idle = False
            yield from self._ride_home(crew)
            if crew.on_shift:
                self._make_idle(crew)

    def _ride_home(self, crew: Crew) -> simpy.events.ProcessGenerator:
        node, lon, lat, access = self.depot[crew.crew_id]
        if crew.node == node and crew.lon == lon and crew.lat == lat:
            return
        home = Crew(crew.crew_id, crew.home, crew.shift, node, lon, lat, access, crew.seribu)
        ride = self.ride_s(crew, home) / 60.0
        start = self.env.now
        if ride > 0:
            yield self.env.timeout(ride)
        self.busy_log.append((crew.crew_id, start, self.env.now))
        crew.busy_min += ride
        crew.node, crew.lon, crew.lat, crew.access_m = node, lon, lat, access

    def _km(self, a: Crew, b: Job) -> float:
        if not self._travel:
            return 0.0
        return _metres(a, b) * self.city.speeds.detour_factor / 1000.0

    def verify(self, job: Job) -> simpy.events.ProcessGenerator:
        """The desk checks the proof photo; now and then the job goes back for another visit."""
        yield self.env.timeout(job.verify_min)
        if job.rework_u < self.scenario.crews.rework_probability * (0.5 ** (job.visits - 1)):
            self.submit(job)
        else:
            self.closed_min[job.index] = self.env.now

    def run_shifts(self, shift: int, days: int) -> simpy.events.ProcessGenerator:
        """Put the crews of one shift on and off duty every day."""
        env = self.env
        start_h, end_h = self.scenario.crews.shifts[shift]
        crews = [c for c in self.crews if c.shift == shift]
        for day in range(days + 1):
            on = day * 1440 + start_h * 60
            if on > env.now:
                yield env.timeout(on - env.now)
            for crew in crews:
                crew.on_shift = True
                if crew.job is None and not crew.idle and crew.wake is not None:
                    self._make_idle(crew)
                    if crew.job is not None:
                        crew.wake.succeed()
            yield env.timeout((end_h - start_h) * 60)
            for crew in crews:
                crew.on_shift = False
                if crew.idle:
                    crew.pool.idle.remove(crew)  # type: ignore[union-attr]
                    crew.idle = False

    def run(self, *, until_min: float, progress: Callable[[float], object] | None = None) -> None:
        """Run the model until `until_min` (minutes), reporting progress each simulated day."""
        env = self.env
        env.process(self.feed_jobs(self._jobs()))
        for crew in self.crews:
            env.process(self.run_crew(crew))
        days = int(np.ceil(until_min / 1440))
        for shift in range(len(self.scenario.crews.shifts)):
            env.process(self.run_shifts(shift, days))
        day = 1440.0
        while day < until_min:
            env.run(until=day)
            if progress is not None:
                progress(1)
            day += 1440.0
        env.run(until=until_min)
        if progress is not None:
            progress(1)

    def outcome_closed_min(self) -> NDArray[np.float64]:
        """Closing time of every report, whatever its path (NaN while still open)."""
        f = self.reports.frame
        outcome = f["outcome"].to_numpy()
        closed = self.closed_min.copy()
        closed[(outcome == INVALID) | (outcome == DUPLICATE)] = self.coordinated_min[
            (outcome == INVALID) | (outcome == DUPLICATE)
        ]
        agency = outcome == AGENCY
        closed[agency] = self.coordinated_min[agency] + f["agency_min"].to_numpy()[agency]
        return closed
