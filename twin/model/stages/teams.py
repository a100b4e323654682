"""Field teams: crews that ride to jobs, work on site and take the next job, in shifts.

This is the engine shared by PPSU crews (one pool per kelurahan, or per kecamatan when pooled)
and agency teams (one pool per agency and kota). Each pool keeps its queue in a dispatch policy
object (`twin.model.dispatch`). Teams are event-driven rather than generator processes: a busy
spell (ride, work, proof) is one SimPy timeout whose callback decides what the team does next,
which keeps a simulated year of 300,000 jobs within seconds. Shifts are SimPy processes.

A shift's end is handled explicitly as overtime: a team busy when its shift ends finishes the job
in hand (the overtime is logged as busy time), then rides home and takes nothing more; work still
waiting stays in the pool's queue for the next shift.

A pool can be resized mid-run (`resize`, a dated change of an agency's teams): new teams start at
the depot, leaving ones are marked retired and finish the job in hand, then ride home for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    import simpy

    from twin.model.dispatch import DispatchPolicy
    from twin.model.stages.riding import Rider


@dataclass(slots=True)
class Timeline:
    """Per-report times and facts every stage writes into (minutes; NaN: not reached).

    Attributes
    ----------
    picked_min, coordinated_min, assigned_min, arrived_min, done_min, closed_min
        When the desk picked the report up, when it was coordinated, first got a team, the team arrived (last visit), the
        work was done (last visit), and the report was closed.
    crew_of
        PPSU crew of the last visit (-1: none).
    visits
        Field visits.
    travel_km
        Kilometres ridden for the report.
    team_wait_min, ride_min, work_min
        Minutes waiting in a team's queue, riding to the site and working on site (with the
        proof upload), summed over the visits: the parts of the resolution decomposition.
    """

    picked_min: np.ndarray
    coordinated_min: np.ndarray
    assigned_min: np.ndarray
    arrived_min: np.ndarray
    done_min: np.ndarray
    closed_min: np.ndarray
    crew_of: np.ndarray
    visits: np.ndarray
    travel_km: np.ndarray
    team_wait_min: np.ndarray
    ride_min: np.ndarray
    work_min: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Timeline:
        """A timeline of `n` reports that have reached no stage yet."""
        return cls(
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.full(n, -1, dtype=np.int64),
            np.zeros(n, dtype=np.int64),
            np.zeros(n),
            np.zeros(n),
            np.zeros(n),
            np.zeros(n),
        )


@dataclass(slots=True, eq=False)
class Job:
    """A field job (a report handed to PPSU or to an agency).

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
    wait_min
        A wait between the first and the second visit (material, permit, the next day): 0 for a
        job done in one visit.
    ready_min
        When the job last joined its pool's queue.
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
    wait_min: float = 0.0
    ready_min: float = 0.0


@dataclass(slots=True, frozen=True)
class Place:
    """A fixed point teams ride to (a depot, an agency's base)."""

    node: int
    lon: float
    lat: float
    access_m: float
    seribu: bool


@dataclass(slots=True, eq=False)
class Crew:
    """A PPSU crew or an agency team.

    Attributes
    ----------
    crew_id
        Number within its engine.
    home
        Kelurahan row of its depot (or of its agency's base).
    shift
        Index into its engine's shifts.
    node, lon, lat, access_m, seribu
        Where it is now (while riding home: the last job site, from which it would turn back).
    depot
        Its depot or base.
    returning, return_start_min, home_at_min
        A ride home under way: when it began and when it ends.
    retired
        Left its pool (a dated cut of the teams): it finishes the job in hand, then rides home
        and takes nothing more.
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
    retired: bool = False

    @property
    def position(self) -> tuple[int, float, float]:
        """A hashable key of where the crew is (for timing each distinct position once)."""
        return (self.node, self.lon, self.lat)


@dataclass(slots=True, eq=False)
class Pool:
    """Teams that share one queue."""

    policy: DispatchPolicy
    crews: list[Crew] = field(default_factory=list)
    idle: list[Crew] = field(default_factory=list)


class FieldTeams:
    """Teams in pools, riding from job to job during their shifts.

    Parameters
    ----------
    env
        The SimPy environment.
    rider
        Ride times and the leg log.
    timeline
        The per-report record the teams write into.
    shifts
        ``(start_h, end_h)`` of each shift (an end past 24 runs over midnight).
    finished
        Called with the team and the job when a visit's work (and proof) is done; it closes the
        job, or sends it back with `submit` later.
    works_on
        Whether the teams work on a day (day number); None: every day.
    """

    def __init__(
        self,
        env: simpy.Environment,
        rider: Rider,
        timeline: Timeline,
        shifts: tuple[tuple[float, float], ...],
        finished: Callable[[Crew, Job], None],
        works_on: Callable[[int], bool] | None = None,
    ) -> None:
        self.env = env
        self.rider = rider
        self.timeline = timeline
        self.shifts = shifts
        self.finished = finished
        self.works_on = works_on
        self.proof_min = 0.0
        self.crews: list[Crew] = []
        self.pool_of_kelurahan: list[Pool] = []
        self.busy_log: list[tuple[int, float, float]] = []  # (crew, start_min, end_min)
        self.overtime_min = 0.0
        self._on_duty = [False] * len(shifts)  # per shift, not per crew
        self._shift_pools: list[list[tuple[Pool, list[Crew]]]] = []

    def add_crew(self, pool: Pool, home: int, shift: int, depot: Place) -> Crew:
        """A new team of `pool`, waiting at `depot`."""
        crew = Crew(
            crew_id=len(self.crews),
            home=home,
            shift=shift,
            node=depot.node,
            lon=depot.lon,
            lat=depot.lat,
            access_m=depot.access_m,
            seribu=depot.seribu,
            pool=pool,
            depot=depot,
        )
        crew.on_done = lambda _, crew=crew: self._job_done(crew)
        pool.crews.append(crew)
        self.crews.append(crew)
        return crew

    def close_roster(self, pools: list[Pool]) -> None:
        """All teams are added: note, per shift, each pool with the teams that shift takes off."""
        self._shift_pools = [
            [(p, [c for c in p.crews if c.shift == sh]) for p in pools if p.crews]
            for sh in range(len(self.shifts))
        ]

    def resize(self, pool: Pool, n: int, home: int, depot: Place) -> None:
        """`pool` has `n` teams from now (a dated change; call `close_roster` after).

        New teams start at `depot`, spread over the shifts like the first ones; a team of a shift
        on duty takes a waiting job at once. Teams leave idle ones first (at the depot or riding
        home), then those off duty, then busy ones, which finish the job in hand (newest first
        among equals).
        """
        active = pool.crews
        if n < len(active):
            leaving = sorted(active, key=lambda c: (c.job is not None, not c.idle, -c.crew_id))
            for crew in leaving[: len(active) - n]:
                crew.retired = True
                if crew.idle:
                    pool.idle.remove(crew)
                    crew.idle = False
                active.remove(crew)
            return
        for i in range(len(active), n):
            crew = self.add_crew(pool, home, i % len(self.shifts), depot)
            if self._on_duty[crew.shift]:
                self._next_or_idle(crew)

    # --- jobs ----------------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """A job is ready: the policy gives it an idle team, or queues it."""
        job.ready_min = self.env.now
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
        """A team on shift with nothing in hand: take a waiting job, or join the idle list."""
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

        The ride home is not an event either: the team is idle from the moment it leaves the
        site, `_settle` moves it to the depot once the ride is over, and a job given to it on
        the way turns it back from the last site.
        """
        env = self.env
        i = job.index
        start = env.now
        ride_min = self.rider.ride_s(crew, job) / 60.0
        t = self.timeline
        t.team_wait_min[i] += start - job.ready_min
        t.ride_min[i] += ride_min
        t.work_min[i] += job.work_min + self.proof_min
        if job.visits == 0:
            t.assigned_min[i] = start
        job.visits += 1
        t.arrived_min[i] = start + ride_min
        self.rider.log_leg(i, crew, job)
        crew.job = job
        crew.job_start_min = start
        env.timeout(ride_min + job.work_min + self.proof_min).callbacks.append(crew.on_done)  # type: ignore[arg-type]

    def _job_done(self, crew: Crew) -> None:
        """Visit over: record, hand the job to `finished`, then the next job, idle, or home."""
        env = self.env
        job = crew.job
        assert job is not None
        i = job.index
        self._log_busy(crew, crew.job_start_min, env.now)
        if not self._on_duty[crew.shift]:
            self.overtime_min += env.now - max(crew.job_start_min, self._shift_end_min(crew))
        crew.jobs_done += 1
        crew.node, crew.lon, crew.lat = job.node, job.lon, job.lat
        crew.access_m, crew.seribu = job.access_m, job.seribu
        self.timeline.done_min[i] = env.now
        self.timeline.visits[i] = job.visits
        self.finished(crew, job)
        crew.job = None
        if self._on_duty[crew.shift] and not crew.retired:
            self._next_or_idle(crew)
            if crew.job is not None:
                return
        self._start_return(crew)

    def _shift_end_min(self, crew: Crew) -> float:
        """The end of the shift the crew was last on (it is now off duty)."""
        end_h = self.shifts[crew.shift][1]
        day = (self.env.now - end_h * 60) // 1440
        return float(day * 1440 + end_h * 60)

    def _log_busy(self, crew: Crew, start: float, end: float) -> None:
        self.busy_log.append((crew.crew_id, start, end))
        crew.busy_min += end - start

    # --- riding home ---------------------------------------------------------------------------

    def _start_return(self, crew: Crew) -> None:
        """Set off home from the job site (see `_start_job`)."""
        depot = crew.depot
        assert depot is not None
        if crew.node == depot.node and crew.lon == depot.lon and crew.lat == depot.lat:
            return
        crew.returning = True
        crew.return_start_min = self.env.now
        crew.home_at_min = self.env.now + self.rider.ride_s(crew, depot) / 60.0
        self.rider.log_leg(-1, crew, depot)

    def _settle(self, crew: Crew) -> None:
        """If the ride home is over, the team is at its depot."""
        if crew.home_at_min <= self.env.now:
            depot = crew.depot
            assert depot is not None
            self._log_busy(crew, crew.return_start_min, crew.home_at_min)
            crew.node, crew.lon, crew.lat = depot.node, depot.lon, depot.lat
            crew.access_m, crew.seribu = depot.access_m, depot.seribu
            crew.returning = False

    def _turn_back(self, crew: Crew) -> None:
        """A job reaches a team on its way home: it rides from its last site instead."""
        if crew.returning:
            self._settle(crew)
        if crew.returning:
            self._log_busy(crew, crew.return_start_min, self.env.now)
            crew.returning = False

    # --- shifts --------------------------------------------------------------------------------

    def run_shifts(self, shift: int, days: int) -> simpy.events.ProcessGenerator:
        """Put the teams of one shift on and off duty every day."""
        env = self.env
        start_h, end_h = self.shifts[shift]
        for day in range(days + 1):
            if self.works_on is not None and not self.works_on(day):
                continue
            on = day * 1440 + start_h * 60
            off = on + (end_h - start_h) * 60
            if off <= env.now:  # a warm start: shifts over before the clock's start are skipped
                continue
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
            yield env.timeout(off - env.now)
            self._on_duty[shift] = False
            for pool, _ in self._shift_pools[shift]:
                staying = [crew for crew in pool.idle if crew.shift != shift]
                if len(staying) != len(pool.idle):
                    for crew in pool.idle:
                        crew.idle = crew.shift != shift
                    pool.idle = staying

    def start(self, days: int) -> None:
        """Start the shift processes."""
        for shift in range(len(self.shifts)):
            self.env.process(self.run_shifts(shift, days))

    def finish(self, until_min: float) -> None:
        """Rides home still under way at the end count as busy up to the end."""
        for crew in self.crews:
            if crew.returning:
                self._log_busy(crew, crew.return_start_min, min(crew.home_at_min, until_min))
                crew.returning = False
