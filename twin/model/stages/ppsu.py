"""PPSU: the kelurahan's field crews, their depots, and the desk's check of their proof photos.

Crews answering reports per kelurahan come from a table or a rule (`twin.model.staffing`), split
evenly over the shifts, waiting at the kelurahan office (the depot). A job (a report dispatched to PPSU) goes to
its kelurahan's pool, or its kecamatan's when pooled; the crew uploads a photo when done and the
desk verifies it, now and then sending the job back for another visit (rework). A job that needs a
second day (material to fetch, too big for one shift) returns to the queue after its wait.

A dated change of ``crews.dispatch`` (`change`) gives every pool the new policy at 00:00 of its date;
the jobs waiting then move to the new policy's queue in their arrival order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twin.model.demand import PPSU
from twin.model.dispatch import POLICIES
from twin.model.staffing import ppsu_crews
from twin.model.stages.teams import Crew, FieldTeams, Job, Place, Pool

if TYPE_CHECKING:
    import simpy

    from twin.city.assembly import City
    from twin.model.demand import Reports
    from twin.model.scenario import Scenario
    from twin.model.stages.riding import Rider
    from twin.model.stages.teams import Timeline


class PpsuCrews:
    """The PPSU crews of every kelurahan in the run.

    Parameters
    ----------
    env, rider, timeline
        The run's environment, ride times and per-report record.
    city, scenario
        The city and the scenario.
    """

    def __init__(
        self,
        env: simpy.Environment,
        rider: Rider,
        timeline: Timeline,
        city: City,
        scenario: Scenario,
    ) -> None:
        k = scenario.crews
        self.env = env
        self.timeline = timeline
        self.teams = FieldTeams(env, rider, timeline, k.shifts, self._proof_uploaded)
        self.teams.proof_min = k.proof_min
        self._verify = k.verification
        self._rework_p = k.rework_probability
        self._build(city, scenario)

    @property
    def crews(self) -> list[Crew]:
        """Every crew."""
        return self.teams.crews

    def _build(self, city: City, sc: Scenario) -> None:
        policy_cls = POLICIES[sc.crews.dispatch]
        depots = city.depots
        seribu = city.is_seribu
        per_kel = ppsu_crews(city, sc)
        active = np.ones(city.n_kelurahan, dtype=bool)
        if sc.run.only_kelurahan:
            active = np.isin(city.kelurahan.codes, sc.run.only_kelurahan)
        key = (
            city.kelurahan_region
            if sc.crews.pooling == "kecamatan"
            else np.arange(city.n_kelurahan)
        )
        pools: dict[int, Pool] = {}
        n_shifts = len(sc.crews.shifts)
        teams = self.teams
        for k in range(city.n_kelurahan):
            pool = pools.setdefault(int(key[k]), Pool(policy_cls(teams.rider.ride_s)))  # type: ignore[arg-type]
            teams.pool_of_kelurahan.append(pool)
            if not active[k]:
                continue
            row = depots.iloc[k]
            has_roads = bool(city.kelurahan_has_roads[k])
            depot = Place(
                int(row["node"]) if has_roads else -1,
                float(row["lon"]),
                float(row["lat"]),
                float(row["snap_m"]) if has_roads else 0.0,
                bool(seribu[k]),
            )
            for i in range(int(per_kel[k])):
                teams.add_crew(pool, k, i % n_shifts, depot)
        self.pools = list(pools.values())
        teams.close_roster(self.pools)

    def change(self, field: str, value: float | str) -> None:
        """A dated change (`twin.model.changes`): ``crews.dispatch`` takes policy `value`."""
        if field != "crews.dispatch":  # pragma: no cover - the registry routes only this here
            raise ValueError(f"PPSU crews cannot change {field}")
        policy_cls = POLICIES[str(value)]
        for pool in self.pools:
            waiting = pool.policy.drain()
            pool.policy = policy_cls(self.teams.rider.ride_s)  # type: ignore[arg-type]
            for job in waiting:
                pool.policy.push(job)

    def jobs(self, city: City, reports: Reports, scenario: Scenario) -> list[Job]:
        """A job for every report dispatched to PPSU, in report order."""
        f = reports.frame
        ppsu = np.flatnonzero(f["outcome"].to_numpy() == PPSU)
        order = scenario.crews.priority_order
        rank_of = np.array(
            [order.index(c) if c in order else len(order) for c in reports.categories]
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
            city.is_seribu[kelurahan],
            f["work_min"].to_numpy(),
            f["verify_min"].to_numpy(),
            f["rework_u"].to_numpy(),
            np.zeros(len(ppsu), dtype=np.int64),
            f["wait_min"].to_numpy(),
        )
        return list(map(Job, *(c.tolist() for c in columns)))

    def _proof_uploaded(self, crew: Crew, job: Job) -> None:
        """The desk verifies the proof: closed, or back to the queue for another visit.

        A job that needs a second day goes back to the queue after its wait, unverified.
        """
        env = self.env
        i = job.index
        self.timeline.crew_of[i] = crew.crew_id
        if job.wait_min > 0 and job.visits == 1:
            env.timeout(job.wait_min).callbacks.append(lambda _, job=job: self.teams.submit(job))
        elif not self._verify:
            self.timeline.closed_min[i] = env.now
        elif job.rework_u < self._rework_p * 0.5 ** (job.visits - 1):
            env.timeout(job.verify_min).callbacks.append(lambda _, job=job: self.teams.submit(job))
        else:
            self.timeline.closed_min[i] = env.now + job.verify_min
