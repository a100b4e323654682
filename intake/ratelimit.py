"""Rate limits: failed authentications per source address, new reports per key and per address.

Fixed windows counted in memory by the `limits` library, per worker process (with ``--workers
N`` a client may get up to N times the limit; a proxy in front that rewrites the source address
must pass it on, see uvicorn's ``--proxy-headers``). A refused request gets 429 with
``Retry-After``: the seconds until its window ends. Every limit is a `limits` rate string
(``30/minute``, ``50/second``) or ``off``.

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
import time

from limits import RateLimitItem, parse, storage, strategies

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


class RateLimits:
    """The service's limits, counted per worker process.

    Parameters
    ----------
    failed_auth, reports_key, reports_address
        Rate strings (see the module docstring), or ``off``.
    """

    def __init__(self, *, failed_auth: str, reports_key: str, reports_address: str) -> None:
        self.failed_auth = parse_limit("failed_auth", failed_auth)
        self.reports_key = parse_limit("reports_key", reports_key)
        self.reports_address = parse_limit("reports_address", reports_address)
        self._window = strategies.FixedWindowRateLimiter(storage.MemoryStorage())

    def check_address(self, address: str) -> None:
        """429 if `address` has failed authentication too often in the current window."""
        if self.failed_auth is not None and not self._window.test(
            self.failed_auth, "auth", address
        ):
            self._refuse(self.failed_auth, "auth", address, "too many failed authentications")

    def failed(self, address: str) -> None:
        """Count a failed authentication of `address`."""
        if self.failed_auth is not None:
            self._window.hit(self.failed_auth, "auth", address)

    def report(self, key_id: int, address: str) -> None:
        """Count a new report of this key and address; 429 if either is over its limit."""
        if self.reports_address is not None and not self._window.hit(
            self.reports_address, "addr", address
        ):
            self._refuse(self.reports_address, "addr", address, "too many reports from here")
        if self.reports_key is not None and not self._window.hit(
            self.reports_key, "key", str(key_id)
        ):
            self._refuse(self.reports_key, "key", str(key_id), "too many reports for this key")

    def _refuse(self, item: RateLimitItem, *identifiers: str) -> None:
        *ids, what = identifiers
        reset = self._window.get_window_stats(item, *ids).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise ApiError(429, f"{what}: at most {item}; retry in {wait} s", retry_after=wait)
