"""Working calendars: the days and hours a desk or an agency works, public holidays included.

Public holidays are Indonesia's for the simulated dates, from the maintained `holidays` package
(national holidays and the government's joint leave days it lists), not a hand-written list.
A calendar answers, in simulation minutes, whether it is open now, when it next opens, and when
a piece of work started now ends if it pauses at closing and resumes at the next opening.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache

import holidays

MARGIN_DAYS = 60  # work begun near the end of a run may finish after it


@lru_cache(maxsize=64)
def public_holidays(start_date: str, days: int) -> frozenset[int]:
    """Day numbers (0 = `start_date`) of Indonesia's public holidays within `days` (+ margin)."""
    start = dt.date.fromisoformat(start_date)
    end = start + dt.timedelta(days=days + MARGIN_DAYS)
    calendar = holidays.country_holidays("ID", years=range(start.year, end.year + 1))
    return frozenset((d - start).days for d in calendar if start <= d < end)


class WorkingCalendar:
    """Open intervals, one per working day, in minutes from the run's start.

    Parameters
    ----------
    start_date
        Calendar date of day 0 (ISO).
    days
        Days of the run (the calendar covers a margin beyond).
    open_h, close_h
        Opening hours of a working day.
    working_days
        Weekdays worked, Monday = 0.
    closed_on_holidays
        Closed on Indonesia's public holidays.
    """

    def __init__(
        self,
        start_date: str,
        days: int,
        open_h: float,
        close_h: float,
        working_days: tuple[int, ...],
        *,
        closed_on_holidays: bool,
    ) -> None:
        weekday0 = dt.date.fromisoformat(start_date).weekday()
        off = public_holidays(start_date, days) if closed_on_holidays else frozenset()
        worked = set(working_days)
        self.n_days = days + MARGIN_DAYS
        self.open_min: list[float] = []
        self.close_min: list[float] = []
        for d in range(self.n_days):
            works = (weekday0 + d) % 7 in worked and d not in off
            self.open_min.append(d * 1440 + open_h * 60 if works else math.inf)
            self.close_min.append(d * 1440 + close_h * 60 if works else -math.inf)
        # the next working day from each day on (n_days: none)
        self._next_working = [self.n_days] * (self.n_days + 1)
        for d in range(self.n_days - 1, -1, -1):
            self._next_working[d] = d if self.open_min[d] < math.inf else self._next_working[d + 1]

    @property
    def openings(self) -> list[float]:
        """Every opening time, in order."""
        return [t for t in self.open_min if t < math.inf]

    def works_on(self, day: int) -> bool:
        """Whether day number `day` is a working day."""
        return day < self.n_days and self.open_min[day] < math.inf

    def is_open(self, t: float) -> bool:
        """Whether the calendar is open at minute `t` (closing time itself is closed)."""
        d = int(t // 1440)
        return d < self.n_days and self.open_min[d] <= t < self.close_min[d]

    def next_open(self, t: float) -> float:
        """`t` itself when open, else the next opening (inf when none within the calendar)."""
        d = int(t // 1440)
        if d >= self.n_days:
            return math.inf
        if t < self.close_min[d]:
            return max(t, self.open_min[d])
        nxt = self._next_working[d + 1]
        return self.open_min[nxt] if nxt < self.n_days else math.inf

    def finish(self, t: float, work_min: float) -> float:
        """When `work_min` of work begun at `t` ends, pausing at closing and resuming on opening."""
        t = self.next_open(t)
        while t < math.inf:
            d = int(t // 1440)
            left = self.close_min[d] - t
            if work_min <= left:
                return t + work_min
            work_min -= left
            nxt = self._next_working[d + 1]
            t = self.open_min[nxt] if nxt < self.n_days else math.inf
        return math.inf

    def open_minutes(self, days: int) -> float:
        """Minutes open within the first `days` days."""
        return sum(
            c - o
            for o, c in zip(self.open_min[:days], self.close_min[:days], strict=True)
            if o < math.inf
        )
