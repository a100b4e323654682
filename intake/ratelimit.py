"""Rate limits: failed authentications per source address, new reports per key and per address.

Fixed windows counted in memory, per worker process (with ``--workers N`` a client may get up to
N times the limit; a proxy in front that rewrites the source address must pass it on, see
uvicorn's ``--proxy-headers``). A refused request gets 429 with ``Retry-After``: the seconds
until its window ends. Every limit is a rate string of the `limits` library (``30/minute``,
``50/second``, parsed by it) or ``off``.

The counting itself is `FixedWindow`, a dict per limit emptied when its window ends (so it holds
only the clients of one window). `limits`' own in-memory storage cost 36 us of server CPU per
report (a lock per key, an expiry timer thread started every 10 ms): +26 % on the hot path.

* Failed authentication (``INTAKE_RATE_FAILED_AUTH``, default ``30/minute`` per source address):
  once an address has failed that often, every credential it sends is refused until the window
  ends, right or wrong, so keys and tokens cannot be guessed (64,490 attempts got no 429 before).
* New reports (``INTAKE_RATE_REPORTS_KEY``, default ``100/second`` per channel key, and
  ``INTAKE_RATE_REPORTS_ADDRESS``, default ``50/second`` per source address): far above a city's
  real reporting (Jakarta: a few a minute, a flood day ten times that), far below what would
  let one client crowd out the others.
"""

from __future__ import annotations

import math
import threading
import time

from limits import RateLimitItem, parse

from intake.errors import ApiError

DEFAULTS = {"failed_auth": "30/minute", "reports_key": "100/second", "reports_address": "50/second"}


def parse_limit(name: str, text: str) -> RateLimitItem | None:
    """A rate limit from its setting, None for ``off`` (ValueError naming the setting)."""
    if text.strip().lower() == "off":
        return None
    try:
        return parse(text)
    except ValueError:
        raise ValueError(
            f"INTAKE_RATE_{name.upper()}={text!r}: expected a rate such as 30/minute, or off"
        ) from None


class FixedWindow:
    """Counts per client of one limit in windows aligned to the clock (``amount`` per window).

    Parameters
    ----------
    item
        The limit, as `limits` parsed it.
    """

    def __init__(self, item: RateLimitItem) -> None:
        self.item = item
        self.amount = item.amount
        self.seconds = float(item.get_expiry())
        self.ends = 0.0
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def _roll(self, now: float) -> None:
        if now >= self.ends:  # a new window: every client starts again from zero
            self.ends = now - now % self.seconds + self.seconds
            self.counts = {}

    def hit(self, who: str) -> float | None:
        """Count one event of `who`; None if within the limit, else seconds until it resets."""
        now = time.time()
        with self._lock:
            self._roll(now)
            count = self.counts.get(who, 0) + 1
            self.counts[who] = count
        return None if count <= self.amount else self.ends - now

    def blocked(self, who: str) -> float | None:
        """None if `who` may go on, else seconds until its window resets (nothing counted)."""
        now = time.time()
        with self._lock:
            self._roll(now)
            over = self.counts.get(who, 0) >= self.amount
        return self.ends - now if over else None


class RateLimits:
    """The service's limits, counted per worker process.

    Parameters
    ----------
    failed_auth, reports_key, reports_address
        Rate strings (see the module docstring), or ``off``.
    """

    def __init__(self, *, failed_auth: str, reports_key: str, reports_address: str) -> None:
        self.failed_auth = _window(parse_limit("failed_auth", failed_auth))
        self.reports_key = _window(parse_limit("reports_key", reports_key))
        self.reports_address = _window(parse_limit("reports_address", reports_address))

    def check_address(self, address: str) -> None:
        """429 if `address` has failed authentication too often in the current window."""
        if self.failed_auth is not None:
            _refuse_if(
                self.failed_auth,
                self.failed_auth.blocked(address),
                "too many failed authentications",
            )

    def failed(self, address: str) -> None:
        """Count a failed authentication of `address`."""
        if self.failed_auth is not None:
            self.failed_auth.hit(address)

    def report(self, key_id: int, address: str) -> None:
        """Count a new report of this key and address; 429 if either is over its limit."""
        if self.reports_address is not None:
            _refuse_if(
                self.reports_address,
                self.reports_address.hit(address),
                "too many reports from here",
            )
        if self.reports_key is not None:
            _refuse_if(
                self.reports_key, self.reports_key.hit(str(key_id)), "too many reports for this key"
            )


def _window(item: RateLimitItem | None) -> FixedWindow | None:
    return None if item is None else FixedWindow(item)


def _refuse_if(window: FixedWindow, wait: float | None, what: str) -> None:
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            429, f"{what}: at most {window.item}; retry in {seconds} s", retry_after=seconds
        )
