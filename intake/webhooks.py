"""Webhooks: subscriptions per kelurahan, signed deliveries from the outbox, retries, dead letters.

Delivery is at least once, and idempotent for the receiver: each POST carries the event's
``X-Twin-Event-Id`` (also ``event_id`` in the body), the same on every retry, so a receiver that
remembers the ids it has handled acts on each alert exactly once, whatever crashes happen
between the server's commit, its POST and its bookkeeping. The body is signed with HMAC-SHA256
under the subscription's secret: ``X-Twin-Signature: sha256=<hex>``.

Retries are persisted (``next_at``), not slept in a thread, so they survive restarts: the
schedule is tenacity's exponential wait (2 s, 4 s, 8 s, ... at most an hour), evaluated for
the attempt number stored with the delivery. After ``max_attempts`` a delivery is ``dead``:
listed for the administrator (``twin webhooks dead``, ``GET /api/v1/admin/deliveries``), who
may queue it again.

No SSRF: a URL must be http(s), at most 2,000 characters, without credentials, and every
address its host resolves to must be public (not private, loopback, link-local, multicast or
reserved), checked when subscribing and again before each delivery (DNS may change); redirects
are not followed. ``INTAKE_WEBHOOK_ALLOW_PRIVATE=1`` lifts the address rule for tests.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
import tenacity
from sqlalchemy.engine import Connection, Engine

from intake import outbox
from intake.db import deliveries, events, webhooks
from intake.errors import ApiError
from intake.store import now_utc

log = logging.getLogger(__name__)

MAX_URL = 2000
BACKOFF = tenacity.wait_exponential(multiplier=2, min=2, max=3600)


def retry_delay(attempts: int) -> float:
    """Seconds before the next try of a delivery that failed `attempts` times."""
    state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    state.attempt_number = attempts
    return float(BACKOFF(state))


def sign(secret: str, body: bytes) -> str:
    """The ``X-Twin-Signature`` header value: HMAC-SHA256 of the body, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_url(url: str, *, allow_private: bool) -> str:
    """Return `url` if a webhook may be sent there, else raise `ApiError` 422 saying why."""
    if len(url) > MAX_URL:
        raise ApiError(422, f"webhook url is longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(422, "webhook url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ApiError(422, "webhook url must not carry credentials: the signature proves origin")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError, UnicodeError):
        raise ApiError(422, f"webhook host {parts.hostname[:100]!r} cannot be resolved") from None
    if not allow_private:
        for *_, address in found:
            ip = ipaddress.ip_address(address[0])
            if not ip.is_global or ip.is_multicast:
                raise ApiError(
                    422, f"webhook host {parts.hostname[:100]!r} is a private or local address"
                )
    return url


def subscribe(
    conn: Connection, *, kelurahan_code: str, url: str, allow_private: bool
) -> tuple[int, str]:
    """A new subscription (``"*"``: every kelurahan); returns its id and secret (shown once)."""
    check_url(url, allow_private=allow_private)
    secret = "whsec_" + secrets.token_urlsafe(32)
    result = conn.execute(
        webhooks.insert().values(
            kelurahan_code=kelurahan_code,
            url=url,
            secret=secret,
            active=True,
            created_at=now_utc(),
        )
    )
    return int(result.inserted_primary_key[0]), secret  # type: ignore[index]


def list_deliveries(conn: Connection, *, state: str, limit: int = 100) -> list[dict[str, Any]]:
    """Deliveries in `state` (``dead`` for the dead letters), newest first."""
    rows = conn.execute(
        sa.select(
            deliveries.c.id,
            deliveries.c.webhook_id,
            deliveries.c.state,
            deliveries.c.attempts,
            deliveries.c.last_error,
            deliveries.c.next_at,
            events.c.event_id,
            events.c.kind,
            events.c.report_id,
        )
        .join(events, events.c.id == deliveries.c.event_id)
        .where(deliveries.c.state == state)
        .order_by(deliveries.c.id.desc())
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


def requeue(conn: Connection, *, delivery_id: int) -> bool:
    """Queue a dead delivery again, from its first attempt; False if there is none."""
    changed = conn.execute(
        deliveries.update()
        .where(deliveries.c.id == delivery_id, deliveries.c.state == "dead")
        .values(state="pending", attempts=0, next_at=now_utc(), locked_until=None)
    ).rowcount
    return changed == 1


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How deliveries are made: attempts before the dead letter, lease, timeouts."""

    max_attempts: int = 8
    lease_seconds: float = 30.0
    timeout_seconds: float = 5.0
    poll_seconds: float = 0.25
    sla_sweep_seconds: float = 30.0
    sla_nearing_hours: float = 5.0
    allow_private: bool = False


class Deliverer:
    """A thread that delivers due webhooks and records SLA events, in every server process.

    Several processes share the work safely: a delivery is claimed by a conditional UPDATE
    (a lease), so exactly one process posts it at a time.
    """

    def __init__(self, engine: Engine, policy: DeliveryPolicy) -> None:
        self.engine = engine
        self.policy = policy
        self._stop = threading.Event()
        self._client = httpx.Client(
            timeout=policy.timeout_seconds, follow_redirects=False, trust_env=False
        )
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._last_sweep = 0.0

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.policy.poll_seconds):
            try:
                self.step()
            except Exception as exc:  # the database may be briefly unreachable: try again
                log.warning("webhook delivery step failed: %s", type(exc).__name__)

    def step(self) -> int:
        """Sweep SLA events when due, then deliver what is due; return deliveries tried."""
        if time.monotonic() - self._last_sweep >= self.policy.sla_sweep_seconds:
            self._last_sweep = time.monotonic()
            with self.engine.begin() as conn:
                outbox.sweep_sla(conn, now=now_utc(), nearing_hours=self.policy.sla_nearing_hours)
        tried = 0
        for delivery_id in self._claim():
            self._deliver(delivery_id)
            tried += 1
        return tried

    def _claim(self, limit: int = 20) -> list[int]:
        now = now_utc()
        free = sa.or_(deliveries.c.locked_until.is_(None), deliveries.c.locked_until < now)
        due = sa.and_(deliveries.c.state == "pending", deliveries.c.next_at <= now, free)
        claimed = []
        with self.engine.connect() as conn:
            ids = list(
                conn.execute(
                    sa.select(deliveries.c.id).where(due).order_by(deliveries.c.id).limit(limit)
                ).scalars()
            )
        lease = now + timedelta(seconds=self.policy.lease_seconds)
        for delivery_id in ids:
            with self.engine.begin() as conn:
                won = conn.execute(
                    deliveries.update()
                    .where(deliveries.c.id == delivery_id, due)
                    .values(locked_until=lease)
                ).rowcount
            if won == 1:
                claimed.append(delivery_id)
        return claimed

    def _deliver(self, delivery_id: int) -> None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(
                        deliveries.c.attempts,
                        events.c.event_id,
                        events.c.kind,
                        events.c.payload,
                        webhooks.c.url,
                        webhooks.c.secret,
                        webhooks.c.active,
                    )
                    .join(events, events.c.id == deliveries.c.event_id)
                    .join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
                    .where(deliveries.c.id == delivery_id)
                )
                .mappings()
                .one()
            )
        body = row["payload"].encode()
        error = None
        if not row["active"]:
            error = "subscription removed"
        else:
            try:
                check_url(row["url"], allow_private=self.policy.allow_private)
                answer = self._client.post(
                    row["url"],
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "User-Agent": "jakarta-twin-webhooks/1",
                        "X-Twin-Event-Id": row["event_id"],
                        "X-Twin-Event-Type": row["kind"],
                        "X-Twin-Signature": sign(row["secret"], body),
                    },
                )
                if not 200 <= answer.status_code < 300:
                    error = f"HTTP {answer.status_code}"
            except ApiError as exc:
                error = exc.message
            except httpx.HTTPError as exc:
                error = type(exc).__name__
        self._settle(delivery_id, row["attempts"] + 1, error)

    def _settle(self, delivery_id: int, attempts: int, error: str | None) -> None:
        now = now_utc()
        values: dict[str, Any]
        if error is None:
            values = {"state": "delivered", "delivered_at": now, "last_error": None}
        elif attempts >= self.policy.max_attempts:
            values = {"state": "dead", "last_error": error}
            log.warning("webhook delivery %d dead after %d attempts: %s", delivery_id, attempts, error)  # fmt: skip
        else:
            next_at = now + timedelta(seconds=retry_delay(attempts))
            values = {"next_at": next_at, "last_error": error}
        with self.engine.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery_id)
                .values(attempts=attempts, locked_until=None, **values)
            )
