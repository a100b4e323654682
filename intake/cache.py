"""Expensive reads (KPIs over every report) reused for a few seconds, computed once at a time.

A dashboard polled by hundreds of viewers must not compute the ranking over the whole table on
every request: that is what broke the load test's ramp first. Each result is kept for
`seconds` and carries the moment it was computed, so a client knows how fresh it is; while one
request recomputes a key, the others asking for it wait for that result instead of starting
their own computation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any


class RecentResults:
    """Results by key, each reused for `seconds` after it was computed (0: never reused).

    Parameters
    ----------
    seconds
        How long a result is served before it is computed again.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._results: dict[Hashable, tuple[float, datetime, Any]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> tuple[Any, datetime]:
        """The result for `key` and when it was computed (computing it now if it is stale)."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one computation per key at a time; the others take its result
            hit = self._results.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.seconds:
                return hit[2], hit[1]
            started, at = time.monotonic(), datetime.now(UTC)
            value = compute()
            if self.seconds > 0:
                self._results[key] = (started, at, value)
            return value, at
