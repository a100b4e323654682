"""The event stream: outbox events fanned out to server-sent-event subscribers.

One poller per server process reads new ``events`` rows (every ``events_poll_seconds``, and
only while someone listens) and hands each to the subscribers whose scope covers its
kelurahan. Every process reads the shared outbox, so with several workers each subscriber
still sees every event; each event is encoded once and a subscriber gets all that wait for
it in one write.
A subscriber that reconnects with ``Last-Event-ID`` is first replayed what it missed from the
database. On PostgreSQL an id may become visible after a higher one (transactions commit in any
order): a missing id is looked for again for `GAP_SECONDS` before it is given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from intake.db import events

log = logging.getLogger(__name__)

GAP_SECONDS = 5.0
QUEUE_SIZE = 10_000  # a subscriber this far behind is dropped; it resumes with Last-Event-ID
REPLAY_MAX = 5_000


@dataclass(frozen=True, slots=True)
class Event:
    """One outbox row as the stream sends it; `wire` is its server-sent-event text, encoded
    once for every subscriber."""

    id: int
    kind: str
    kelurahan_code: str
    payload: str
    wire: bytes


@dataclass(eq=False, slots=True)
class Subscriber:
    """A listener: its scope (a kelurahan code, None for all) and its queue."""

    scope: str | None
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def wants(self, event: Event) -> bool:
        return self.scope is None or self.scope == event.kelurahan_code


def _rows_to_events(rows: Any) -> list[Event]:
    return [
        Event(
            r.id,
            r.kind,
            r.kelurahan_code,
            r.payload,
            ServerSentEvent(data=r.payload, event=r.kind, id=str(r.id)).encode(),
        )
        for r in rows
    ]


class EventHub:
    """Polls the outbox and fans events out to subscribers (one per server process)."""

    def __init__(self, engine: Engine, poll_seconds: float) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.subscribers: set[Subscriber] = set()
        self.cursor = self._last_id()
        self.gaps: dict[int, float] = {}  # missing id -> when it stops being looked for
        self._task: asyncio.Task[None] | None = None

    def _last_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))).scalar_one())  # fmt: skip

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in list(self.subscribers):
            sub.queue.put_nowait(None)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            if not self.subscribers:  # nobody listens: no query (the first one sets the cursor)
                continue
            try:
                found = await run_in_threadpool(self._fetch)
            except Exception as exc:  # a database hiccup: the next poll tries again
                log.warning("event stream poll failed: %s", type(exc).__name__)
                continue
            for event in found:
                for sub in list(self.subscribers):
                    if sub.wants(event):
                        try:
                            sub.queue.put_nowait(event)
                        except asyncio.QueueFull:  # too slow: end it, it resumes by id
                            self.subscribers.discard(sub)
                            sub.queue = asyncio.Queue(1)
                            sub.queue.put_nowait(None)

    def _fetch(self) -> list[Event]:
        now = time.monotonic()
        self.gaps = {i: until for i, until in self.gaps.items() if until > now}
        wanted = events.c.id > self.cursor
        if self.gaps:
            wanted = sa.or_(wanted, events.c.id.in_(list(self.gaps)))
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(events.c.id, events.c.kind, events.c.kelurahan_code, events.c.payload)
                .where(wanted)
                .order_by(events.c.id)
            ).all()
        found = _rows_to_events(rows)
        for event in found:
            self.gaps.pop(event.id, None)
            if event.id > self.cursor + 1:
                for missing in range(self.cursor + 1, event.id):
                    self.gaps.setdefault(missing, now + GAP_SECONDS)
            self.cursor = max(self.cursor, event.id)
        return found

    def replay(self, scope: str | None, after: int) -> list[Event]:
        """Events after id `after` in `scope`, from the database (at most `REPLAY_MAX`)."""
        query = sa.select(
            events.c.id, events.c.kind, events.c.kelurahan_code, events.c.payload
        ).where(events.c.id > after)
        if scope is not None:
            query = query.where(events.c.kelurahan_code == scope)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(events.c.id).limit(REPLAY_MAX)).all()
        return _rows_to_events(rows)

    async def stream(self, scope: str | None, last_id: int | None) -> AsyncIterator[list[Event]]:
        """Events for a subscriber, in batches: the missed ones (after `last_id`), then each
        time new ones arrive, all that are waiting (one write for many events under load)."""
        sub = Subscriber(scope)
        if not self.subscribers:  # the poller was idle: start from what exists now
            self.cursor = max(self.cursor, await run_in_threadpool(self._last_id))
            self.gaps.clear()
        self.subscribers.add(sub)
        try:
            sent = -1
            if last_id is not None:
                missed = await run_in_threadpool(self.replay, scope, last_id)
                if missed:
                    sent = missed[-1].id
                    yield missed
            while True:
                batch = [await sub.queue.get()]
                while not sub.queue.empty():
                    batch.append(sub.queue.get_nowait())
                fresh = [e for e in batch if e is not None and e.id > sent]  # not replayed
                if fresh:
                    yield fresh
                if any(e is None for e in batch):  # closing, or dropped for being too slow
                    return
        finally:
            self.subscribers.discard(sub)
