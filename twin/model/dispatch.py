"""Dispatch policies: which idle crew takes a new job, and which waiting job a freed crew takes.

Each policy is a small strategy object owning its pool's queue, in the manner of Ciw's routing
objects. Scenarios pick one by name (``crews.dispatch``):

- ``nearest``: the "Go-Jek" rule. A new job goes to the idle crew that can reach it first; a crew
  that frees up while jobs wait takes the nearest of the 32 longest-waiting (bounded, so no job
  starves and a long backlog costs no more than 32 lookups).
- ``least_loaded``: a new job goes to the idle crew with the fewest jobs so far; waiting jobs are
  served first come, first served.
- ``fifo``: first come, first served; the crew idle longest takes the next job.
- ``priority``: hazards first (``crews.priority_order``: floods, trees, drainage, roads), then
  first come, first served; idle crews chosen as ``nearest``.

A dated change of ``crews.dispatch`` (`twin.model.changes`) swaps a pool's policy mid-run: the old
one's `drain` hands over the waiting jobs in their arrival order, and the new one queues them anew.

Queues are deques or heaps, never SimPy's list-backed ``PriorityResource``, whose inserts slow to
a crawl with a backlog of thousands.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

NEAREST_SCAN = 32


class Job(Protocol):
    """What a policy needs of a job."""

    index: int
    rank: int
    ready_min: float


class CrewLike(Protocol):
    """What a policy needs of a crew."""

    jobs_done: int

    @property
    def position(self) -> object:
        """A hashable key of where the crew is."""


class DispatchPolicy:
    """Base policy: FIFO queue, the crew idle longest takes the job."""

    name = "fifo"

    def __init__(self, ride_s: Callable[[CrewLike, Job], float]) -> None:
        self.ride_s = ride_s
        self._queue: deque[Job] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, job: Job) -> None:
        """Queue a job that found no idle crew."""
        self._queue.append(job)

    def pop_for(self, crew: CrewLike) -> Job | None:
        """The waiting job `crew` should take next, removed from the queue (None if empty)."""
        return self._queue.popleft() if self._queue else None

    def choose_crew(self, idle: Sequence[CrewLike], job: Job) -> CrewLike:
        """The idle crew that takes `job` (`idle` is in order of becoming idle)."""
        return idle[0]

    def drain(self) -> list[Job]:
        """Empty the queue: the waiting jobs in their arrival order (when each last joined it;
        the queue is in that order already), for another policy to take over."""
        jobs = list(self._queue)
        self._queue.clear()
        return jobs


class FifoPolicy(DispatchPolicy):
    """First come, first served (the base behaviour)."""


class NearestPolicy(DispatchPolicy):
    """The Go-Jek rule: the crew that can be there first."""

    name = "nearest"

    def choose_crew(self, idle: Sequence[CrewLike], job: Job) -> CrewLike:
        """The idle crew with the shortest ride to the job (ties: idle longest).

        Idle crews mostly wait at their depots, so many share a position: each distinct position
        is timed once, and none is timed when all idle crews stand in one place.
        """
        first = idle[0].position
        if all(crew.position == first for crew in idle):
            return idle[0]
        best, best_s = idle[0], float("inf")
        timed: dict[object, float] = {}
        for crew in idle:
            where = crew.position
            seconds = timed.get(where)
            if seconds is None:
                seconds = timed[where] = self.ride_s(crew, job)
            if seconds < best_s:
                best, best_s = crew, seconds
        return best

    def pop_for(self, crew: CrewLike) -> Job | None:
        """The nearest of the longest-waiting jobs."""
        if not self._queue:
            return None
        head = list(itertools.islice(self._queue, NEAREST_SCAN))
        best = min(range(len(head)), key=lambda i: self.ride_s(crew, head[i]))
        del self._queue[best]
        return head[best]


class LeastLoadedPolicy(DispatchPolicy):
    """Spread the work: the idle crew with the fewest jobs so far."""

    name = "least_loaded"

    def choose_crew(self, idle: Sequence[CrewLike], job: Job) -> CrewLike:
        """The idle crew with the fewest jobs done (ties: idle longest)."""
        return min(idle, key=lambda crew: crew.jobs_done)


class PriorityPolicy(NearestPolicy):
    """Hazards first, then first come, first served; idle crews chosen by distance."""

    name = "priority"

    def __init__(self, ride_s: Callable[[CrewLike, Job], float]) -> None:
        super().__init__(ride_s)
        self._heap: list[tuple[int, int, Job]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, job: Job) -> None:
        """Queue by (rank, arrival order)."""
        heapq.heappush(self._heap, (job.rank, job.index, job))

    def pop_for(self, crew: CrewLike) -> Job | None:
        """The most urgent waiting job."""
        return heapq.heappop(self._heap)[2] if self._heap else None

    def drain(self) -> list[Job]:
        """Empty the queue: the waiting jobs in their arrival order (ties: report order)."""
        jobs = sorted((job for _, _, job in self._heap), key=lambda j: (j.ready_min, j.index))
        self._heap.clear()
        return jobs


POLICIES: dict[str, type[DispatchPolicy]] = {
    p.name: p for p in (FifoPolicy, NearestPolicy, LeastLoadedPolicy, PriorityPolicy)
}
