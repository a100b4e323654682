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
from twin.model.demand import AGENCY, PPSU, UNANSWERED
from twin.model.staffing import desk_staff
from twin.model.stages.agencies import Agencies
from twin.model.stages.desk import Desks
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
    """

    def __init__(
        self, city: City, scenario: Scenario, reports: Reports, env: simpy.Environment | None = None
    ) -> None:
        self.env = env or simpy.Environment()
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
        if run.only_kelurahan:
            self.staff[~np.isin(city.kelurahan.codes, run.only_kelurahan)] = 0
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
        )  # fmt: skip
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

    def _skip_desk(self, arrivals: list[int]) -> None:
        """Coordination disabled (verification runs): every report is routed on receipt."""
        env = self.env
        received = self.reports.frame["received_min"].to_numpy()
        feed = iter(arrivals)
        pending = next(feed, None)

        def arrive(_: object = None) -> None:
            nonlocal pending
            while pending is not None and received[pending] <= env.now:
                self.timeline.picked_min[pending] = env.now
                self.timeline.coordinated_min[pending] = env.now
                self._route(pending)
                pending = next(feed, None)
            if pending is not None:
                env.timeout(received[pending] - env.now).callbacks.append(arrive)

        arrive()

    def run(self, *, until_min: float, progress: Callable[[float], object] | None = None) -> None:
        """Run the model until `until_min` (minutes), reporting progress each simulated day."""
        env = self.env
        arrivals = np.flatnonzero(self._outcome != UNANSWERED).tolist()  # residual: never seen
        if self.scenario.coordination.enabled:
            self.desks.start(arrivals)
        else:
            self._skip_desk(arrivals)
        days = int(np.ceil(until_min / 1440))
        self.ppsu.teams.start(days)
        self.agencies.start(days)
        day = 1440.0
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
