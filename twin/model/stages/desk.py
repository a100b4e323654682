"""The kelurahan coordination desk (Menunggu -> Koordinasi, the 6-hour clock).

Each kelurahan's desk is a capacity-limited resource: its staff (`twin.model.staffing`) each
handle one report at a time, on the desk's working calendar (days, hours, public holidays). A
report that finds no free staff member, or the desk closed, waits in the desk's queue. Handling
pauses at closing and resumes at the next opening, so a staff member stays with a report begun
late in the day. Queue discipline: oldest first, or hazard categories first (``priority``); a
report waiting past ``escalate_after_h`` jumps the queue (the documented choice of escalation:
the desk itself takes it next, rather than a kecamatan desk). A report still waiting when its
patience runs out is abandoned and never picked up (the Erlang-A mechanism behind "never picked
up"); abandonment is noticed when the report would have been taken, or at the end of the run.

Under ``fifo`` the desks need no events at all: a desk's input is its arrivals alone (nothing
downstream feeds back), so `fifo_desks` serves each desk's reports in order of receipt by the
staff member free first (the Kiefer-Wolfowitz recursion of a c-server queue, on the working
calendar): exactly what the event-driven `Desks` does under ``fifo``, a test shows, at a fraction
of the cost. `Desks` runs the ``priority`` discipline, event-driven like the PPSU crews (arrival,
finished handling and opening are timeout callbacks, no generator per report).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    import simpy
    from numpy.typing import NDArray

    from twin.model.calendar import WorkingCalendar
    from twin.model.stages.teams import Timeline


def fifo_desks(
    calendar: WorkingCalendar,
    staff: NDArray[np.int64],
    received: NDArray[np.float64],
    handling: NDArray[np.float64],
    patience: NDArray[np.float64],
    kelurahan: NDArray[np.int64],
    rows: NDArray[np.int64],
    until_min: float,
    staff_changes: list[tuple[float, NDArray[np.int64]]] = (),  # type: ignore[assignment]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Pick-up and coordination times of reports `rows` at first-come-first-served desks.

    Parameters
    ----------
    calendar
        The desks' working calendar.
    staff
        Staff per kelurahan.
    received, handling, patience, kelurahan
        Per report (all reports of the run): minute received, handling work, patience (inf:
        none), kelurahan row.
    rows
        The reports that reach a desk, in order of receipt.
    until_min
        The end of the run (a report still waiting then has abandoned if its patience is over).
    staff_changes
        ``(minute, staff per kelurahan)`` from that minute on, in time order. A desk that loses
        staff loses those free first; one still busy finishes the report in hand.

    Returns
    -------
    picked, coordinated, abandoned
        Per report: pick-up and coordination minute (NaN: never; later than `until_min`: after
        the run), and whether it abandoned the queue.
    """
    n = len(received)
    picked = np.full(n, np.nan)
    coordinated = np.full(n, np.nan)
    abandoned = np.zeros(n, dtype=bool)
    order = rows[np.argsort(kelurahan[rows], kind="stable")]
    bounds = np.searchsorted(kelurahan[order], np.arange(len(staff) + 1))
    t_all, h_all, p_all = received.tolist(), handling.tolist(), patience.tolist()
    next_open, finish = calendar.next_open, calendar.finish
    for k in range(len(staff)):
        members = order[bounds[k] : bounds[k + 1]].tolist()
        free = [0.0] * int(staff[k])  # a heap: when each staff member is next free
        pending = deque((at, int(new[k])) for at, new in staff_changes)
        for i in members:
            t = t_all[i]
            start = next_open(max(t, free[0])) if free else math.inf
            while pending and pending[0][0] <= start:  # staff change before this pick-up
                at, new = pending.popleft()
                for _ in range(new - len(free)):
                    heapq.heappush(free, at)
                for _ in range(len(free) - new):
                    heapq.heappop(free)
                start = next_open(max(t, free[0])) if free else math.inf
            if start - t > p_all[i]:
                abandoned[i] = t + p_all[i] < until_min  # left before the end of the run
                continue
            if start >= until_min:
                continue  # still waiting at the end; later reports of this desk wait longer
            end = finish(start, h_all[i])
            heapq.heapreplace(free, end)
            picked[i], coordinated[i] = start, end
    return picked, coordinated, abandoned


@dataclass(slots=True, eq=False)
class Desk:
    """One kelurahan's desk: free staff and the reports waiting."""

    staff: int
    free: int
    fifo: deque[int] = field(default_factory=deque)
    heap: list[tuple[int, int]] = field(default_factory=list)  # (rank, report) under priority
    waiting: int = 0


class Desks:
    """Every kelurahan's coordination desk.

    Parameters
    ----------
    env, timeline
        The run's environment and per-report record.
    calendar
        The desks' working calendar.
    staff
        Staff per kelurahan.
    received, handling, patience
        Per report: minute received, handling work (minutes) and patience (minutes, inf: none).
    kelurahan, rank
        Per report: kelurahan row and priority rank (0 most urgent).
    coordinated
        Called with a report's row the moment it is coordinated.
    priority
        Serve by rank, then oldest first (else oldest first).
    escalate_after_min
        Waiting past this jumps the queue (inf: never).
    staff_changes
        ``(minute, staff per kelurahan)`` from that minute on (see `fifo_desks`).
    """

    def __init__(
        self,
        env: simpy.Environment,
        timeline: Timeline,
        calendar: WorkingCalendar,
        staff: NDArray[np.int64],
        received: NDArray[np.float64],
        handling: NDArray[np.float64],
        patience: NDArray[np.float64],
        kelurahan: NDArray[np.int64],
        rank: NDArray[np.int64],
        coordinated: Callable[[int], None],
        *,
        priority: bool,
        escalate_after_min: float,
        staff_changes: list[tuple[float, NDArray[np.int64]]] = (),  # type: ignore[assignment]
    ) -> None:
        self.env = env
        self.timeline = timeline
        self.calendar = calendar
        self.desks = [Desk(int(s), int(s)) for s in staff]
        self._received = received.tolist()
        self._handling = handling.tolist()
        self._patience = patience.tolist()
        self._kelurahan = kelurahan.tolist()
        self._rank = rank.tolist()
        self._coordinated = coordinated
        self._priority = priority
        self._escalate = escalate_after_min
        self._staff_changes = list(staff_changes)
        self._taken = bytearray(len(self._received))  # under priority: left the queue already
        self.abandoned = np.zeros(len(self._received), dtype=bool)

    # --- arrivals and openings -----------------------------------------------------------------

    def start(self, arrivals: list[int]) -> None:
        """Feed `arrivals` (report rows in order of receipt) and open the desks each working day.

        Both are chains of timeouts with callbacks, one pending at a time.
        """
        env = self.env
        received = self._received
        feed = iter(arrivals)
        pending = next(feed, None)

        def arrive(_: object = None) -> None:
            nonlocal pending
            while pending is not None and received[pending] <= env.now:
                self._arrive(pending)
                pending = next(feed, None)
            if pending is not None:
                env.timeout(received[pending] - env.now).callbacks.append(arrive)

        openings = iter(self.calendar.openings)

        def open_desks(_: object = None) -> None:
            for desk in self.desks:
                if desk.waiting and desk.free > 0:
                    self._pull(desk)
            nxt = next(openings, None)
            if nxt is not None:
                env.timeout(nxt - env.now).callbacks.append(open_desks)

        first = next(openings, None)
        if first is not None:
            env.timeout(first).callbacks.append(open_desks)
        for at, staff in self._staff_changes:
            env.timeout(at).callbacks.append(lambda _, staff=staff: self._restaff(staff))
        arrive()

    def _restaff(self, staff: NDArray[np.int64]) -> None:
        """New staff numbers: joiners start at once, leavers go when their report is done."""
        for desk, new in zip(self.desks, staff.tolist(), strict=True):
            desk.free += new - desk.staff
            desk.staff = new
            if desk.free > 0 and desk.waiting and self.calendar.is_open(self.env.now):
                self._pull(desk)

    def _arrive(self, i: int) -> None:
        desk = self.desks[self._kelurahan[i]]
        if desk.free > 0 and not desk.waiting and self.calendar.is_open(self.env.now):
            self._pick(desk, i)
            return
        desk.waiting += 1
        desk.fifo.append(i)
        if self._priority:
            heapq.heappush(desk.heap, (self._rank[i], i))
        if desk.free > 0 and self.calendar.is_open(self.env.now):
            self._pull(desk)

    # --- handling ------------------------------------------------------------------------------

    def _pick(self, desk: Desk, i: int) -> None:
        """A staff member takes report `i`; handling pauses over closed hours."""
        now = self.env.now
        desk.free -= 1
        self.timeline.picked_min[i] = now
        end = self.calendar.finish(now, self._handling[i])
        if end < math.inf:
            self.env.timeout(end - now).callbacks.append(lambda _, d=desk, i=i: self._done(d, i))

    def _done(self, desk: Desk, i: int) -> None:
        self.timeline.coordinated_min[i] = self.env.now
        desk.free += 1
        self._coordinated(i)
        if desk.free > 0 and desk.waiting and self.calendar.is_open(self.env.now):
            self._pull(desk)

    def _pull(self, desk: Desk) -> None:
        """Free staff take waiting reports; reports past their patience have left."""
        now = self.env.now
        while desk.free > 0 and desk.waiting:
            i = self._pop(desk)
            desk.waiting -= 1
            if now - self._received[i] > self._patience[i]:
                self.abandoned[i] = True
                continue
            self._pick(desk, i)

    def _pop(self, desk: Desk) -> int:
        if not self._priority:
            return desk.fifo.popleft()
        taken = self._taken
        fifo = desk.fifo
        while taken[fifo[0]]:
            fifo.popleft()
        if self.env.now - self._received[fifo[0]] >= self._escalate:
            i = fifo.popleft()  # escalated: the longest-waiting report jumps the queue
        else:
            while taken[desk.heap[0][1]]:
                heapq.heappop(desk.heap)
            i = heapq.heappop(desk.heap)[1]
        taken[i] = 1
        return i

    def finish(self, until_min: float) -> None:
        """Reports still waiting at the end whose patience has run out have left by then."""
        for desk in self.desks:
            for i in desk.fifo:
                if not self._taken[i] and until_min - self._received[i] > self._patience[i]:
                    self.abandoned[i] = True
