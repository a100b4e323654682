"""The SimPy model of one run: the stages of a report's life composed on one clock.

A report's life follows Jakarta's statuses. It waits (Menunggu) until the kelurahan desk picks it
up and coordinates it (Koordinasi: the 6-hour clock, `stages.desk`); it is then closed as invalid
or duplicate, handed to an agency (Disposisi to an OPD, `stages.agencies`), or dispatched to PPSU
(`stages.ppsu`): a crew rides to it over the road network (`stages.riding`), works on site,
uploads a photo, and the desk verifies it (Selesai). The clock unit is minutes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

from twin.model.demand import AGENCY, DUPLICATE, INVALID, UNANSWERED
from twin.model.stages.agencies import agency_closed_min
from twin.model.stages.desk import coordination_done_min
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
        self.timeline = Timeline.empty(len(f))
        coordinated = coordination_done_min(
            f["received_min"].to_numpy(), f["handling_min"].to_numpy(), scenario
        )
        coordinated[f["outcome"].to_numpy() == UNANSWERED] = np.nan  # never picked up
        self.timeline.coordinated_min = coordinated
        self.rider = Rider(self.env, city, travel=scenario.crews.travel)
        self.ppsu = PpsuCrews(self.env, self.rider, self.timeline, city, scenario)
        self.return_km = 0.0  # riding home, not attributable to a report

    @property
    def crews(self) -> list[Crew]:
        """The PPSU crews."""
        return self.ppsu.crews

    @property
    def busy_log(self) -> list[tuple[int, float, float]]:
        """PPSU crews' busy spells: ``(crew, start_min, end_min)``."""
        return self.ppsu.teams.busy_log

    def feed_jobs(self, jobs: list[Job], submit: Callable[[Job], None]) -> None:
        """Hand each job to `submit` when its coordination is done.

        A chain of timeouts with callbacks, one pending at a time: lighter than a generator
        process for 300,000 hand-overs a simulated year.
        """
        env = self.env
        ready = self.timeline.coordinated_min[[j.index for j in jobs]]
        order = np.argsort(ready, kind="stable")
        feed = iter(zip(ready[order].tolist(), [jobs[i] for i in order], strict=True))
        pending = next(feed, None)

        def hand_over(_: object = None) -> None:
            nonlocal pending
            while pending is not None and pending[0] <= env.now:
                submit(pending[1])
                pending = next(feed, None)
            if pending is not None:
                env.timeout(pending[0] - env.now).callbacks.append(hand_over)

        hand_over()

    def run(self, *, until_min: float, progress: Callable[[float], object] | None = None) -> None:
        """Run the model until `until_min` (minutes), reporting progress each simulated day."""
        env = self.env
        self.feed_jobs(
            self.ppsu.jobs(self.city, self.reports, self.scenario), self.ppsu.teams.submit
        )
        days = int(np.ceil(until_min / 1440))
        self.ppsu.teams.start(days)
        day = 1440.0
        while day < until_min:
            env.run(until=day)
            if progress is not None:
                progress(1)
            day += 1440.0
        env.run(until=until_min)
        self.return_km = self.rider.add_up_km(self.timeline.travel_km)
        self.ppsu.teams.finish(until_min)
        if progress is not None:
            progress(1)

    def outcome_closed_min(self) -> NDArray[np.float64]:
        """Closing time of every report, whatever its path (NaN while still open)."""
        t = self.timeline
        outcome = self.reports.frame["outcome"].to_numpy()
        closed = t.closed_min.copy()
        desk_closed = (outcome == INVALID) | (outcome == DUPLICATE)
        closed[desk_closed] = t.coordinated_min[desk_closed]
        agency = outcome == AGENCY
        closed[agency] = agency_closed_min(
            t.coordinated_min[agency], self.reports.frame["agency_min"].to_numpy()[agency]
        )
        return closed
