"""The SimPy model of one run: the stages of a report's life composed on one clock.

A report's life follows Jakarta's statuses. It waits (Menunggu) for its kelurahan desk, whose
staff pick it up and coordinate it (Koordinasi: the 6-hour clock, `stages.desk`); it is then
closed as invalid or duplicate, handed to an agency (Disposisi to an OPD, `stages.agencies`), or
dispatched to PPSU (`stages.ppsu`): a crew rides to it over the road network (`stages.riding`),
works on site, uploads a photo, and the desk verifies it (Selesai). The clock unit is minutes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import simpy

from twin.model.calendar import WorkingCalendar
from twin.model.changes import event_changes
from twin.model.demand import AGENCY, PPSU, UNANSWERED
from twin.model.staffing import desk_staff
from twin.model.stages.agencies import Agencies
from twin.model.stages.desk import Desks, fifo_desks
from twin.model.stages.ppsu import PpsuCrews
from twin.model.stages.riding import Rider
from twin.model.stages.teams import Timeline

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from twin.city.assembly import City
    from twin.model.demand import Reports
    from twin.model.scenario import Scenario
    from twin.model.stages.teams import Crew, Job
    from twin.model.warm_start import WarmStart


def priority_rank(categories: list[str], order: tuple[str, ...]) -> NDArray[np.int64]:
    """Rank of each category code (0 most urgent; categories not in `order` last)."""
    return np.array([order.index(c) if c in order else len(order) for c in categories])


class CityTwin:
    """One run of the model.

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
    desk_events
        Run first-come-first-served desks event by event too (the check of `fifo_desks`).
    warm
        Start from a state of the real system (`twin.model.warm_start`): the clock starts at
        its minute, and reports already past the desk go straight to their teams.
    """

    def __init__(
        self,
        city: City,
        scenario: Scenario,
        reports: Reports,
        env: simpy.Environment | None = None,
        *,
        desk_events: bool = False,
        warm: WarmStart | None = None,
    ) -> None:
        self.warm = warm
        self.env = env or simpy.Environment(initial_time=warm.start_min if warm else 0.0)
        self.city = city
        self.scenario = scenario
        self.reports = reports
        f = reports.frame
        self._outcome = f["outcome"].to_numpy()
        self.timeline = Timeline.empty(len(f))
        self.rider = Rider(self.env, city, travel=scenario.crews.travel)
        self.ppsu = PpsuCrews(self.env, self.rider, self.timeline, city, scenario)
        self.agencies = Agencies(self.env, self.rider, self.timeline, city, scenario, reports)
        jobs = self.ppsu.jobs(city, reports, scenario)
        self._job_of: dict[int, Job] = {job.index: job for job in jobs}
        c, run = scenario.coordination, scenario.run
        self.staff = desk_staff(city, scenario)
        outside = (
            ~np.isin(city.kelurahan.codes, run.only_kelurahan)
            if run.only_kelurahan
            else np.zeros(city.n_kelurahan, dtype=bool)
        )
        self.staff[outside] = 0
        # dated changes of the desk staff: every desk takes the new number
        self.staff_changes = [
            (day * 1440.0, np.where(outside, 0, int(value)).astype(np.int64))
            for day, value in scenario.schedule("coordination.staff_per_kelurahan")[1:]
        ]
        self.calendar = WorkingCalendar(
            run.start_date, run.days, c.office_open_h, c.office_close_h, c.working_days,
            closed_on_holidays=c.closed_on_holidays,
        )  # fmt: skip
        self.desks = Desks(
            self.env, self.timeline, self.calendar, self.staff,
            f["received_min"].to_numpy(), f["handling_min"].to_numpy(),
            f["patience_min"].to_numpy(), f["kelurahan"].to_numpy(),
            priority_rank(reports.categories, scenario.crews.priority_order)[
                f["category"].to_numpy()
            ],
            self._route,
            priority=c.discipline == "priority",
            escalate_after_min=c.escalate_after_h * 60 if c.escalate_after_h > 0 else math.inf,
            staff_changes=self.staff_changes,
        )  # fmt: skip
        self._desk_events = desk_events
        self.return_km = 0.0  # riding home, not attributable to a report

    @property
    def crews(self) -> list[Crew]:
        """The PPSU crews."""
        return self.ppsu.crews

    @property
    def busy_log(self) -> list[tuple[int, float, float]]:
        """PPSU crews' busy spells: ``(crew, start_min, end_min)``."""
        return self.ppsu.teams.busy_log

    def _route(self, i: int) -> None:
        """Coordinated: close, hand to an agency, or dispatch to PPSU."""
        outcome = self._outcome[i]
        if outcome == PPSU:
            self.ppsu.teams.submit(self._job_of[i])
        elif outcome == AGENCY:
            self.agencies.hand_over(i)
        else:
            self.timeline.closed_min[i] = self.env.now

    def feed(
        self, ready: NDArray[np.float64], rows: list[int], route: Callable[[int], None]
    ) -> None:
        """Pass each report of `rows` to `route` at its `ready` minute (NaN: never).

        A chain of timeouts with callbacks, one pending at a time: lighter than a generator
        process for 300,000 hand-overs a simulated year.
        """
        env = self.env
        when = ready[rows]
        keep = np.isfinite(when)
        order = np.argsort(when[keep], kind="stable")
        feed = iter(
            zip(when[keep][order].tolist(), np.asarray(rows)[keep][order].tolist(), strict=True)
        )
        pending = next(feed, None)

        def hand_over(_: object = None) -> None:
            nonlocal pending
            while pending is not None and pending[0] <= env.now:
                route(pending[1])
                pending = next(feed, None)
            if pending is not None:
                env.timeout(pending[0] - env.now).callbacks.append(hand_over)

        hand_over()

    def _solve_desks(self, arrivals: list[int], until_min: float) -> None:
        """Coordination without events: no desk (verification runs), or first-come-first-served
        desks solved up front (`stages.desk.fifo_desks`); then everything is fed downstream."""
        f = self.reports.frame
        t = self.timeline
        received = f["received_min"].to_numpy()
        if self.scenario.coordination.enabled:
            t.picked_min, t.coordinated_min, self.desks.abandoned = fifo_desks(
                self.calendar, self.staff, received, f["handling_min"].to_numpy(),
                f["patience_min"].to_numpy(), f["kelurahan"].to_numpy(), np.asarray(arrivals, dtype=np.int64),
                until_min, self.staff_changes, self.env.now,
            )  # fmt: skip
        else:
            t.picked_min[arrivals] = received[arrivals]
            t.coordinated_min[arrivals] = received[arrivals]
        # invalid and duplicate reports close at coordination; agency jobs reach their queue
        # after the hand-over delay: both known now, so neither needs an event of its own
        outcome = self._outcome
        closes = (outcome != PPSU) & (outcome != AGENCY)
        t.closed_min[closes] = t.coordinated_min[closes]
        ready = t.coordinated_min.copy()
        agency = outcome == AGENCY
        ready[agency] += self.agencies.handover_delays(
            np.flatnonzero(agency), t.coordinated_min[agency]
        )
        rows = np.asarray(arrivals, dtype=np.int64)
        rows = rows[(outcome[rows] == PPSU) | (outcome[rows] == AGENCY)].tolist()
        self.feed(ready, rows, self._dispatch)

    def _dispatch(self, i: int) -> None:
        """A job is ready for its teams (after coordination, and an agency's hand-over)."""
        if self._outcome[i] == PPSU:
            self.ppsu.teams.submit(self._job_of[i])
        else:
            self.agencies.submit(i)

    def _schedule_changes(self) -> None:
        """Dated changes applied by an event (`twin.model.changes`): at 00:00 of each date the
        stage that owns the field (``ppsu``, ``agencies``) takes the new value. Scheduled first,
        so a change is in force before anything else happens at that minute."""
        stages: dict[str, PpsuCrews | Agencies] = {"ppsu": self.ppsu, "agencies": self.agencies}
        for minute, spec, name, value in event_changes(self.scenario):
            apply = stages[spec.applied_by].change
            self.env.timeout(minute - self.env.now).callbacks.append(
                lambda _, apply=apply, name=name, value=value: apply(name, value)
            )

    def run(self, *, until_min: float, progress: Callable[[float], object] | None = None) -> None:
        """Run the model until `until_min` (minutes), reporting progress each simulated day."""
        env = self.env
        self._schedule_changes()
        seen = self._outcome != UNANSWERED  # the residual lever: never seen
        warm = self.warm
        if warm is not None:
            seen &= ~warm.past_desk
        arrivals = np.flatnonzero(seen).tolist()
        c = self.scenario.coordination
        if c.enabled and (c.discipline == "priority" or self._desk_events):
            self.desks.start(arrivals)
        else:
            self._solve_desks(arrivals, until_min)
        if warm is not None:  # past the desk already: coordinated then, to their teams now
            t, past = self.timeline, warm.past_desk
            t.picked_min[past] = t.coordinated_min[past] = warm.coordinated_min[past]
            self.feed(warm.ready_min, np.flatnonzero(past).tolist(), self._dispatch)
        days = int(np.ceil(until_min / 1440))
        self.ppsu.teams.start(days)
        self.agencies.start(days)
        day = (env.now // 1440 + 1) * 1440.0
        while day < until_min:
            env.run(until=day)
            if progress is not None:
                progress(1)
            day += 1440.0
        env.run(until=until_min)
        self.desks.finish(until_min)
        self.return_km = self.rider.add_up_km(self.timeline.travel_km)
        self.ppsu.teams.finish(until_min)
        self.agencies.finish(until_min)
        if progress is not None:
            progress(1)

    def outcomes(self) -> NDArray[np.int64]:
        """Each report's outcome code; reports abandoned at the desk become ``unanswered``."""
        out = self._outcome.copy()
        out[self.desks.abandoned] = UNANSWERED
        return out

    def never_picked_up(self) -> dict[str, int]:
        """Reports never picked up: abandoned at the desk (mechanism) and the residual lever."""
        residual = int((self._outcome == UNANSWERED).sum())
        return {"abandoned": int(self.desks.abandoned.sum()), "residual": residual}

    def outcome_closed_min(self) -> NDArray[np.float64]:
        """Closing time of every report, whatever its path (NaN while still open)."""
        return self.timeline.closed_min.copy()
