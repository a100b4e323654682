"""The events outbox: what happened to a report, written in the same transaction as the change.

A report received, a status changed, an SLA nearing or breached: each is one row of ``events``
with a public payload (no reporter's contact, no description, coordinates rounded) and a
``event_id`` (uuid4) that identifies it everywhere it goes. In the same statement batch, one
``webhook_deliveries`` row per subscription of its kelurahan is queued. A crash either keeps the
change with its events and deliveries, or neither: nothing to deliver is ever lost, and
`intake.webhooks` delivers from these rows after any restart. The group-commit writer calls
`record_received` in each batch's transaction; `intake.workflow` changes statuses through
`change_status`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_json
from sqlalchemy.engine import Connection

from intake import store
from intake.db import deliveries, events, reports, webhooks
from intake.models import COORDINATE_DECIMALS
from twin.kpis import SLA_COORDINATION_H, SLA_RESOLUTION_H

LAST_EVENT_ID = sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))
SQLITE_INSERT_EVENTS = (
    "INSERT INTO events (id, event_id, kind, report_id, kelurahan_code, at, payload, dedupe) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

ANY_SUBSCRIPTION = sa.select(webhooks.c.id).where(webhooks.c.active.is_(True)).limit(1)

RECEIVED = "report.received"
STATUS_CHANGED = "report.status_changed"
SLA_NEARING = "report.sla_nearing"
SLA_BREACHED = "report.sla_breached"
KINDS = (RECEIVED, STATUS_CHANGED, SLA_NEARING, SLA_BREACHED)


class _Iso:
    """ISO 8601 text of stored times, remembering the last one (a batch shares its time)."""

    def __init__(self) -> None:
        self.last: tuple[Any, str | None] = (None, None)

    def __call__(self, value: Any) -> str | None:
        if value is None:
            return None
        if value is self.last[0]:
            return self.last[1]
        text = value
        if isinstance(value, str):  # SQLite's stored text
            value = datetime.fromisoformat(value)
        iso = store.as_utc(value).isoformat()  # type: ignore[union-attr]
        self.last = (text, iso)
        return iso


def public_report(row: Any, iso: _Iso | None = None) -> dict[str, Any]:
    """The fields of a report an event may carry: nothing a reporter wrote or who they are."""
    iso = iso or _Iso()
    return {
        "id": str(row["id"]),
        "category": row["service_code"],
        "status": row["status"],
        "kelurahan_code": row["kelurahan_code"],
        "lat": round(row["lat"], COORDINATE_DECIMALS),
        "lon": round(row["lon"], COORDINATE_DECIMALS),
        "created_at": iso(row["created_at"]),
        "coordinated_at": iso(row["coordinated_at"]),
        "closed_at": iso(row["closed_at"]),
    }


def new_event(
    kind: str,
    row: Any,
    at: datetime,
    *,
    dedupe: str | None = None,
    iso: _Iso | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An ``events`` row for `row` (a report) with its JSON payload (`iso`: a shared
    formatter of times, for a batch)."""
    iso = iso or _Iso()
    event_id = str(uuid.uuid4())
    payload = {
        "event_id": event_id,
        "type": kind,
        "at": iso(at),
        "report": public_report(row, iso),
        **extra,
    }
    return {
        "event_id": event_id,
        "kind": kind,
        "report_id": int(row["id"]),
        "kelurahan_code": row["kelurahan_code"],
        "at": at,
        "payload": to_json(payload).decode(),  # compact, UTF-8 (pydantic's fast encoder)
        "dedupe": dedupe,
    }


def record_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert events and queue a delivery per matching active subscription; return their ids.

    Must run inside the transaction of the change the events describe.
    """
    if not rows:
        return []
    if conn.dialect.name == "sqlite":  # the write lock is held (BEGIN IMMEDIATE): ids are ours
        first = conn.execute(LAST_EVENT_ID).scalar_one()
        ids = list(range(first + 1, first + 1 + len(rows)))
        # straight to the driver, as `intake.store` does for reports: the writer's hot path
        stamps = _Stamps()
        conn.exec_driver_sql(
            SQLITE_INSERT_EVENTS,
            [
                (i, r["event_id"], r["kind"], r["report_id"], r["kelurahan_code"],
                 stamps(r["at"]), r["payload"], r["dedupe"])
                for r, i in zip(rows, ids, strict=True)
            ],
        )  # fmt: skip
        mine = events.c.id.between(ids[0], ids[-1])
    else:
        inserted = conn.execute(
            events.insert().returning(events.c.id, sort_by_parameter_order=True), list(rows)
        )
        ids = [r[0] for r in inserted]
        mine = events.c.id.in_(ids)
    if conn.execute(ANY_SUBSCRIPTION).first() is None:  # nobody to deliver to: no fan-out
        return ids
    subscribed = sa.and_(
        webhooks.c.active.is_(True),
        sa.or_(
            webhooks.c.kelurahan_code == events.c.kelurahan_code, webhooks.c.kelurahan_code == "*"
        ),
    )
    conn.execute(
        deliveries.insert().from_select(
            ["event_id", "webhook_id", "state", "attempts", "next_at"],
            sa.select(
                events.c.id,
                webhooks.c.id,
                sa.literal("pending"),
                sa.literal(0),
                events.c.at,
            )
            .select_from(events.join(webhooks, subscribed))
            .where(mine),
        )
    )
    return ids


def record_received(conn: Connection, outcomes: Sequence[Any]) -> list[int]:
    """``report.received`` for each report `store.insert_reports` stored (not the replays)."""
    fresh = [o[0] for o in outcomes if isinstance(o, tuple) and not o[1]]
    iso = _Iso()
    return record_events(
        conn, [new_event(RECEIVED, row, row["created_at"], iso=iso) for row in fresh]
    )


class _Stamps:
    """SQLite's stored text of UTC times, remembering the last one (a batch shares its time)."""

    def __init__(self) -> None:
        self.last: tuple[datetime | None, str] = (None, "")

    def __call__(self, at: datetime) -> str:
        if at is not self.last[0]:
            utc = store.as_utc(at).astimezone(UTC)  # type: ignore[union-attr]
            self.last = (at, utc.strftime(store.SQLITE_DATETIME))
        return self.last[1]


def change_status(conn: Connection, **change: Any) -> Any:
    """`intake.store.change_status` and its ``report.status_changed`` event, in one transaction."""
    row = store.change_status(conn, **change)
    event = new_event(STATUS_CHANGED, row, store.as_utc(row["updated_at"]), note=change["note"])  # type: ignore[arg-type]
    record_events(conn, [event])
    return row


def _not_yet(dedupe_prefix: str) -> sa.ColumnElement[bool]:
    key = sa.literal(dedupe_prefix) + sa.cast(reports.c.id, sa.String)
    return ~sa.exists().where(events.c.dedupe == key)


def sweep_sla(conn: Connection, *, now: datetime, nearing_hours: float) -> int:
    """Record SLA events that are due and not yet recorded; return how many.

    ``report.sla_nearing``: waiting uncoordinated for `nearing_hours` (before the 6-hour target
    is missed); ``report.sla_breached``: uncoordinated after 6 hours (``target``
    ``coordination_6h``), or not closed after 7 days (``resolution_7d``). Each once per report.
    """
    coord = now - timedelta(hours=SLA_COORDINATION_H)
    rules = [
        (
            SLA_NEARING,
            "nearing:",
            "coordination_6h",
            sa.and_(
                reports.c.status == "menunggu",
                reports.c.created_at <= now - timedelta(hours=nearing_hours),
                reports.c.created_at > coord,
            ),
        ),
        (
            SLA_BREACHED,
            "breach6h:",
            "coordination_6h",
            sa.and_(reports.c.status == "menunggu", reports.c.created_at <= coord),
        ),
        (
            SLA_BREACHED,
            "breach7d:",
            "resolution_7d",
            sa.and_(
                reports.c.status != "selesai",
                reports.c.created_at <= now - timedelta(hours=SLA_RESOLUTION_H),
            ),
        ),
    ]
    due: list[dict[str, Any]] = []
    for kind, prefix, target, condition in rules:
        rows = conn.execute(
            sa.select(reports).where(condition, _not_yet(prefix)).order_by(reports.c.id).limit(1000)
        ).mappings()
        for row in rows:
            age_h = (now - _aware(row["created_at"])).total_seconds() / 3600
            due.append(
                new_event(
                    kind,
                    row,
                    now,
                    dedupe=f"{prefix}{row['id']}",
                    sla={"target": target, "age_h": round(age_h, 2)},
                )
            )
    record_events(conn, due)
    return len(due)


def _aware(value: datetime) -> datetime:
    return store.as_utc(value)  # type: ignore[return-value]
