"""The abstract users the locustfile's users build on: `PacedUser` starts its tasks as a seeded
Poisson process; `ReportingUser` files reports, each retried with one idempotency key until it is
acknowledged, writing what it sent and what it was told to the ledger.
"""

from locust import FastHttpUser

import os
import time
from typing import Any

import gevent

from loadtest import payloads
from loadtest.runstate import STATE

RETRY_STATUSES = (0, 409, 429, 500, 502, 503, 504)  # 0: no HTTP answer (refused, reset, timeout)
CLIENT_TIMEOUT_S = float(os.environ.get("LOADTEST_CLIENT_TIMEOUT") or 10.0)


def _connection_error(response: Any) -> str:
    error = getattr(response, "error", None)
    return f"connection error: {type(error).__name__ if error else 'no answer'}"


def failure_text(response: Any) -> str:
    """What a failed request is reported as: the HTTP status and the body's start, or the
    connection error."""
    if not response.status_code:
        return _connection_error(response)
    return f"HTTP {response.status_code}: {(response.text or '')[:120]}"


class PacedUser(FastHttpUser):
    """A user starting its tasks as a Poisson process of `rate` per second.

    Gaps between task starts are exponential, drawn from the user's own seeded stream, and the
    first task waits a gap too, so many users together offer the open, unsynchronised arrivals
    of the twin's demand model. (Locust's ``constant_throughput`` runs every user's first task
    the instant it is spawned and then keeps them in step: a burst of all users at once, which
    shows up as a 100-300 ms tail that is the load generator's, not the API's.) A user behind its
    schedule (slow answers) starts at once, but never catches up more than a second's worth.
    """

    abstract = True
    rate = 1.0
    network_timeout = CLIENT_TIMEOUT_S
    connection_timeout = min(5.0, CLIENT_TIMEOUT_S)

    def on_start(self) -> None:
        """Seed the pacing and wait the first gap."""
        STATE.load()
        self.pacing = payloads.user_rng(STATE.seed + 17, STATE.worker_index, next(STATE.pacers))
        self.next_start = time.monotonic() + self.pacing.expovariate(self.rate)
        gevent.sleep(max(0.0, self.next_start - time.monotonic()))

    def wait_time(self) -> float:
        """Seconds until the next task starts."""
        now = time.monotonic()
        self.next_start = max(self.next_start, now - 1.0) + self.pacing.expovariate(self.rate)
        return max(0.0, self.next_start - now)


class ReportingUser(PacedUser):
    """A user who files reports, retrying each with the same idempotency key until answered."""

    abstract = True

    def on_start(self) -> None:
        """Seed this user's stream of payloads."""
        STATE.load()
        self.index = next(STATE.users)
        self.rng = payloads.user_rng(STATE.seed, STATE.worker_index, self.index)
        self.sequence = 0
        super().on_start()

    def draw(self, route: str) -> tuple[int, dict[str, Any]]:
        """A payload of `route`: a flood extra with the surge's share during a surge."""
        assert STATE.pool is not None
        flood = self.rng.random() < STATE.surge_share()
        number = STATE.pool.sample(self.rng, route, flood=flood)
        return number, STATE.pool.payloads[number]

    def file_report(self, route: str) -> None:
        """Send one report and retry it (same key, same body) until it is acknowledged."""
        number, payload = self.draw(route)
        self.sequence += 1
        key = f"{STATE.tag}-{STATE.worker_index}-{self.index}-{self.sequence}"
        description = f"{payload['description']} [lt {key}]"
        STATE.log({"e": "sent", "k": key, "p": number, "r": route})
        attempt = 0
        first = time.monotonic()
        while True:
            attempt += 1
            status, report_id, replayed = self.post_once(route, payload, description, key)
            if status == 201:
                ms = round((time.monotonic() - first) * 1000, 1)
                STATE.log(
                    {"e": "ack", "k": key, "id": report_id, "n": attempt, "rp": replayed, "ms": ms}
                )
                if report_id:
                    STATE.acked.append(report_id)
                return
            if status not in RETRY_STATUSES:
                STATE.log({"e": "rej", "k": key, "s": status})
                return
            gevent.sleep(min(1.0, 0.05 * 2 ** min(attempt, 5)))

    def post_once(
        self, route: str, payload: dict[str, Any], description: str, key: str
    ) -> tuple[int, str | None, bool]:
        """One attempt; (status, acknowledged report id, replayed)."""
        raise NotImplementedError
