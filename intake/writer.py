"""Group commit: many reports, one durable transaction, each acknowledged only once committed.

An fsync per report caps SQLite near 1,700 reports/s on this machine. The writer thread instead
takes every report waiting (up to `batch_max`), stores them with three multi-row statements
(`store.insert_reports`), commits once, and only then resolves each request's future: "201 means
committed" holds for every report in the batch. A report that fails its own check (an
idempotency key reused with another body) fails alone.

Should the batch transaction itself fail, the cause decides:

* another worker process committed one of the batch's idempotency keys after the batch read them
  (a unique violation): the batch is stored again, a bounded number of times, and now finds the
  key, so its report is answered as a replay (or 422), never a 503;
* a value the database refuses (a `DataError`, e.g. a text PostgreSQL cannot hold): the client's
  fault, so a 422. The batch is split in halves until the report is isolated (about
  2 log2(n) transactions, not n), so a bad report never costs the others a commit each;
* anything else (the database is unreachable): a 503 with ``Retry-After``, for the whole batch.

Logs name the kind of failure only: a database message can quote a key or a reporter's text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError

from intake import outbox
from intake.errors import ApiError
from intake.store import NewReport, insert_reports

log = logging.getLogger(__name__)
OVERLOADED = "too many reports waiting to be stored; retry shortly with the same Idempotency-Key"
NOT_STORED = "the report could not be stored now; retry with the same Idempotency-Key"
UNSTORABLE = "the report holds a value the database cannot store (e.g. a control character)"
RACE_ATTEMPTS = 3  # a key committed by another process meanwhile: read the keys again, this often


@dataclass(slots=True)
class WriteRequest:
    """One report to commit, and the future its request awaits."""

    report: NewReport
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()


class GroupCommitWriter:
    """A thread that commits queued reports in batches.

    Parameters
    ----------
    engine
        The database engine.
    batch_max
        Most reports per transaction.
    idempotency_hours
        How long an idempotency key is remembered.
    max_pending
        Most reports waiting for a commit; beyond it a report is refused at once with 503 and
        ``Retry-After`` (nothing stored), rather than queueing until every client times out.
    crash_after_commits
        Fault injection (tests only): exit the process right after this many committed
        batches, before acknowledging any report of the last one.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        batch_max: int = 256,
        idempotency_hours: int = 24,
        max_pending: int = 5000,
        crash_after_commits: int | None = None,
    ) -> None:
        self.engine = engine
        self.batch_max = batch_max
        self.idempotency_hours = idempotency_hours
        self.max_pending = max_pending
        self.crash_after_commits = crash_after_commits
        self.commits = 0
        self._queue: queue.Queue[WriteRequest | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    async def submit(self, report: NewReport) -> Any:
        """Queue `report`; once its batch has committed return ``(row, replayed)`` (or raise)."""
        if self._queue.qsize() >= self.max_pending:  # the database cannot keep up: shed load
            raise ApiError(503, OVERLOADED, retry_after=1)
        request = WriteRequest(report, asyncio.get_running_loop())
        self._queue.put(request)
        return await request.future

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[WriteRequest]) -> None:
        outcomes = self._store(batch)
        # one wake-up per event loop for the whole batch, not one per report
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for request, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(request.loop, []).append((request.future, outcome))
        for loop, settled in by_loop.items():
            loop.call_soon_threadsafe(_settle, settled)

    def _store(self, batch: list[WriteRequest]) -> list[Any]:
        """Commit `batch`; return one outcome per report (isolating a report the database refuses)."""
        for _ in range(RACE_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    outcomes = insert_reports(
                        conn,
                        batch=[r.report for r in batch],
                        idempotency_hours=self.idempotency_hours,
                    )
                    outbox.record_received(conn, outcomes)  # in the same transaction
            except IntegrityError:  # another process committed one of these keys: read them again
                log.warning("an idempotency key was committed by another process; storing again")
                continue
            except DataError:
                if len(batch) == 1:
                    log.warning("a report was refused by the database (DataError)")
                    return [ApiError(422, UNSTORABLE)]
                half = len(batch) // 2
                return self._store(batch[:half]) + self._store(batch[half:])
            except Exception as exc:
                log.error("could not store %d report(s): %s", len(batch), type(exc).__name__)
                return [ApiError(503, NOT_STORED, retry_after=1)] * len(batch)
            self.commits += 1
            if self.commits == self.crash_after_commits:
                log.warning(
                    "fault injection: exiting after commit %d, before answering", self.commits
                )
                os._exit(70)
            return outcomes
        log.error("could not store %d report(s): idempotency keys kept racing", len(batch))
        return [ApiError(503, NOT_STORED, retry_after=1)] * len(batch)


def _settle(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, outcome in settled:
        if future.done():  # its request was cancelled (the client went away)
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
