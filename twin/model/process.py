"""The SimPy model: kelurahan coordination, PPSU crews riding the road network, proof and closure.

A report's life follows Jakarta's statuses. It waits (Menunggu) until the kelurahan desk is open,
is coordinated (Koordinasi: the 6-hour clock), then is either closed as invalid or duplicate,
handed to an agency (Disposisi to an OPD, closed after the agency's delay), or dispatched to PPSU.
A PPSU job waits for a crew; the crew rides from where it is (Proses), works on site, uploads a
photo, and the desk verifies it (Selesai), sending it back for another visit now and then. A crew
then takes the next waiting job, or rides back to its depot.

Coordination and agency work need no shared resource in this model, so their times are computed
directly from each report's draws; only PPSU crews, which queue, are simulated event by event.
Each busy spell of a crew (ride, work, proof) is one SimPy timeout whose callback decides what
the crew does next; shifts are a SimPy process. Each dispatch pool (a kelurahan, or a kecamatan
when pooled) keeps its own queue in its policy object. The clock unit is minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import simpy

from twin.city.roads import EARTH_RADIUS_M, haversine_m
from twin.model.demand import AGENCY, DUPLICATE, INVALID, PPSU, UNANSWERED
from twin.model.dispatch import POLICIES, DispatchPolicy

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from twin.city.assembly import City
    from twin.model.demand import Reports
    from twin.model.scenario import Scenario


def _metres(a: Crew | Job | Place, b: Crew | Job | Place) -> float:
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


@dataclass(slots=True, frozen=True)
class Place:
    """A fixed point crews ride to (a depot)."""

    node: int
    lon: float
    lat: float
    access_m: float
    seribu: bool


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
        Where it is now (while riding home: the last job site, from which it would turn back).
    depot
        Its depot.
    returning, return_start_min, home_at_min
        A ride home under way: when it began and when it ends.
    """

    crew_id: int
    home: int
    shift: int
    node: int
    lon: float
    lat: float
    access_m: float
    seribu: bool
    depot: Place | None = None
    pool: Pool | None = None
    job: Job | None = None
    returning: bool = False
    return_start_min: float = 0.0
    home_at_min: float = 0.0
    job_start_min: float = 0.0
    on_done: Callable[[object], None] | None = None
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
        self.coordinated_min[f["outcome"].to_numpy() == UNANSWERED] = np.nan  # never picked up
        self.assigned_min = np.full(n, np.nan)
        self.arrived_min = np.full(n, np.nan)
        self.done_min = np.full(n, np.nan)
        self.closed_min = np.full(n, np.nan)
        self.crew_of = np.full(n, -1, dtype=np.int64)
        self.travel_km = np.zeros(n)
        self.return_km = 0.0  # riding home, not attributable to a report
        self._legs: list[tuple[int, float, float, float, float]] = []  # (report or -1, from, to)
        self.visits = np.zeros(n, dtype=np.int64)
        self.busy_log: list[tuple[int, float, float]] = []  # (crew, start_min, end_min)

        s = city.speeds
        self._congestion = list(s.congestion_by_hour)
        self._access_s_per_m = s.detour_factor / (s.access_speed_kph / 3.6)
        self._land_s_per_m = s.detour_factor / (s.default_speed_kph / 3.6)
        self._boat_s_per_m = 1.0 / (s.boat_speed_kph / 3.6)
        self._travel = scenario.crews.travel
        self._region, self._local, self._offset, self._size, self._flat = city.tables.lookup_lists()
        self._detour_km = s.detour_factor / 1000.0
        self._verify = scenario.crews.verification
        self._rework_p = scenario.crews.rework_probability
        self._proof_min = scenario.crews.proof_min
        self._on_duty = [False] * len(scenario.crews.shifts)  # per shift, not per crew
        self._build_crews()

    # --- travel --------------------------------------------------------------------------------

    def ride_s(self, crew: Crew | Job | Place, job: Job | Crew | Place) -> float:
        """Seconds for a crew to ride from where `crew` is to where `job` is, at the current hour."""
        if not self._travel:
            return 0.0
        factor = self._congestion[int(self.env.now // 60) % 24]
        a, b = crew.node, job.node
        region = self._region
        if a >= 0 and b >= 0 and region[a] == region[b]:
            r = region[a]  # `TravelTables.time_s`, inlined on this hot path
            network_s = self._flat[
                self._offset[r] + self._local[a] * self._size[r] + self._local[b]
            ]
            return network_s * factor + (crew.access_m + job.access_m) * self._access_s_per_m
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
                crew.depot = Place(crew.node, crew.lon, crew.lat, crew.access_m, crew.seribu)
                pool.crews.append(crew)
                self.crews.append(crew)
        # per shift: each pool with the crews it loses at the end of that shift
        self._shift_pools: list[list[tuple[Pool, list[Crew]]]] = [
            [(p, [c for c in p.crews if c.shift == sh]) for p in pools.values() if p.crews]
            for sh in range(n_shifts)
        ]

    def _jobs(self) -> list[tuple[float, Job]]:
        """PPSU jobs in the order they become ready (coordination done)."""
        f = self.reports.frame
        ppsu = np.flatnonzero(f["outcome"].to_numpy() == PPSU)
        ppsu = ppsu[np.argsort(self.coordinated_min[ppsu], kind="stable")]
        order = self.scenario.crews.priority_order
        rank_of = np.array(
            [order.index(c) if c in order else len(order) for c in self.reports.categories]
        )
        f = f.iloc[ppsu]
        kelurahan = f["kelurahan"].to_numpy()
        columns = (  # plain Python lists: building 300,000 jobs from numpy scalars is slow
            ppsu,
            rank_of[f["category"].to_numpy()],
            f["node"].to_numpy(),
            f["lon"].to_numpy(),
            f["lat"].to_numpy(),
            f["access_m"].to_numpy(),
            kelurahan,
            self.city.is_seribu[kelurahan],
            f["work_min"].to_numpy(),
            f["verify_min"].to_numpy(),
            f["rework_u"].to_numpy(),
        )
        ready = self.coordinated_min[ppsu].tolist()
        made = list(map(Job, *(c.tolist() for c in columns)))
        return list(zip(ready, made, strict=True))

    # --- processes -----------------------------------------------------------------------------

    def feed_jobs(self, jobs: list[tuple[float, Job]]) -> None:
        """Hand each PPSU job to its pool when coordination is done.

        A chain of timeouts with callbacks, one pending at a time: lighter than a generator
        process for 300,000 hand-overs a simulated year.
        """
        env = self.env
        feed = iter(jobs)
        pending = next(feed, None)

        def hand_over(_: object = None) -> None:
            nonlocal pending
            while pending is not None and pending[0] <= env.now:
                self.submit(pending[1])
                pending = next(feed, None)
            if pending is not None:
                env.timeout(pending[0] - env.now).callbacks.append(hand_over)

        hand_over()

    def submit(self, job: Job) -> None:
        """A job is ready: the policy gives it an idle crew, or queues it."""
        pool = self.pool_of_kelurahan[job.kelurahan]
        if pool.idle:
            for idle in pool.idle:
                if idle.returning:
                    self._settle(idle)
            crew = pool.policy.choose_crew(pool.idle, job)  # type: ignore[arg-type]
            self._assign(crew, job)  # type: ignore[arg-type]
        else:
            pool.policy.push(job)  # type: ignore[arg-type]

    def _assign(self, crew: Crew, job: Job) -> None:
        assert crew.pool is not None
        crew.pool.idle.remove(crew)
        crew.idle = False
        self._turn_back(crew)
        self._start_job(crew, job)

    def _next_or_idle(self, crew: Crew) -> None:
        """A crew on shift with nothing in hand: take a waiting job, or join the idle list."""
        pool = crew.pool
        assert pool is not None
        if crew.returning:
            self._settle(crew)
        job = pool.policy.pop_for(crew) if len(pool.policy) else None  # type: ignore[arg-type]
        if job is None:
            crew.idle = True
            pool.idle.append(crew)
            return
        self._turn_back(crew)
        self._start_job(crew, job)  # type: ignore[arg-type]

    def _start_job(self, crew: Crew, job: Job) -> None:
        """Ride to the job, work on site and upload proof: one busy spell, one SimPy event.

        Crews are event-driven rather than generator processes: a busy spell is a timeout
        whose callback decides what the crew does next, which keeps a simulated year of
        300,000 jobs within seconds. The ride home is not an event either: the crew is idle
        from the moment it leaves the site, `_settle` moves it to the depot once the ride is
        over, and a job given to it on the way turns it back from the last site.
        """
        env = self.env
        i = job.index
        start = env.now
        ride_min = self.ride_s(crew, job) / 60.0
        if job.visits == 0:
            self.assigned_min[i] = start
        job.visits += 1
        self.arrived_min[i] = start + ride_min
        if self._travel:
            self._legs.append((i, crew.lon, crew.lat, job.lon, job.lat))
        crew.job = job
        crew.job_start_min = start
        env.timeout(ride_min + job.work_min + self._proof_min).callbacks.append(crew.on_done)

    def _job_done(self, crew: Crew) -> None:
        """Proof uploaded: record, verify, then the next job, idle, or home after the shift."""
        env = self.env
        job = crew.job
        assert job is not None
        i = job.index
        self._log_busy(crew, crew.job_start_min, env.now)
        crew.jobs_done += 1
        crew.node, crew.lon, crew.lat = job.node, job.lon, job.lat
        crew.access_m, crew.seribu = job.access_m, job.seribu
        self.done_min[i] = env.now
        self.crew_of[i] = crew.crew_id
        self.visits[i] = job.visits
        if not self._verify:
            self.closed_min[i] = env.now
        elif job.rework_u < self._rework_p * 0.5 ** (job.visits - 1):
            # the desk rejects the proof: the job goes back to the queue after verification
            env.timeout(job.verify_min).callbacks.append(lambda _, job=job: self.submit(job))
        else:
            self.closed_min[i] = env.now + job.verify_min
        crew.job = None
        if self._on_duty[crew.shift]:
            self._next_or_idle(crew)
            if crew.job is not None:
                return
        self._start_return(crew)

    def _add_up_km(self) -> None:
        """Ride distances (straight line x detour), computed in one vectorised pass at the end."""
        if not self._legs:
            return
        legs = np.array(self._legs)
        km = haversine_m(legs[:, 1], legs[:, 2], legs[:, 3], legs[:, 4]) * self._detour_km
        report = legs[:, 0].astype(np.int64)
        np.add.at(self.travel_km, report[report >= 0], km[report >= 0])
        self.return_km = float(km[report < 0].sum())
        self._legs.clear()

    def _log_busy(self, crew: Crew, start: float, end: float) -> None:
        self.busy_log.append((crew.crew_id, start, end))
        crew.busy_min += end - start

    def _start_return(self, crew: Crew) -> None:
        """Set off home from the job site (see `_start_job`)."""
        depot = crew.depot
        assert depot is not None
        if crew.node == depot.node and crew.lon == depot.lon and crew.lat == depot.lat:
            return
        crew.returning = True
        crew.return_start_min = self.env.now
        crew.home_at_min = self.env.now + self.ride_s(crew, depot) / 60.0
        if self._travel:
            self._legs.append((-1, crew.lon, crew.lat, depot.lon, depot.lat))

    def _settle(self, crew: Crew) -> None:
        """If the ride home is over, the crew is at its depot."""
        if crew.home_at_min <= self.env.now:
            depot = crew.depot
            assert depot is not None
            self._log_busy(crew, crew.return_start_min, crew.home_at_min)
            crew.node, crew.lon, crew.lat = depot.node, depot.lon, depot.lat
            crew.access_m, crew.seribu = depot.access_m, depot.seribu
            crew.returning = False

    def _turn_back(self, crew: Crew) -> None:
        """A job reaches a crew on its way home: it rides from its last site instead."""
        if crew.returning:
            self._settle(crew)
        if crew.returning:
            self._log_busy(crew, crew.return_start_min, self.env.now)
            crew.returning = False

    def run_shifts(self, shift: int, days: int) -> simpy.events.ProcessGenerator:
        """Put the crews of one shift on and off duty every day."""
        env = self.env
        start_h, end_h = self.scenario.crews.shifts[shift]
        for day in range(days + 1):
            on = day * 1440 + start_h * 60
            if on > env.now:
                yield env.timeout(on - env.now)
            self._on_duty[shift] = True
            for pool, members in self._shift_pools[shift]:
                waiting = [crew for crew in members if crew.job is None]  # off duty: never idle
                if len(pool.policy):
                    for crew in waiting:
                        if crew.job is None:
                            self._next_or_idle(crew)
                else:  # nothing waiting (the usual case): straight to the idle list
                    for crew in waiting:
                        crew.idle = True
                    pool.idle.extend(waiting)
            yield env.timeout((end_h - start_h) * 60)
            self._on_duty[shift] = False
            for pool, _ in self._shift_pools[shift]:
                staying = [crew for crew in pool.idle if crew.shift != shift]
                if len(staying) != len(pool.idle):
                    for crew in pool.idle:
                        crew.idle = crew.shift != shift
                    pool.idle = staying

    def run(self, *, until_min: float, progress: Callable[[float], object] | None = None) -> None:
        """Run the model until `until_min` (minutes), reporting progress each simulated day."""
        env = self.env
        self.feed_jobs(self._jobs())
        for crew in self.crews:
            crew.on_done = lambda _, crew=crew: self._job_done(crew)
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
        self._add_up_km()
        for crew in self.crews:  # rides home still under way count up to the end
            if crew.returning:
                self._log_busy(crew, crew.return_start_min, min(crew.home_at_min, until_min))
                crew.returning = False
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
