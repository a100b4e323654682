"""Persistence: keyword-only functions over a SQLAlchemy connection (SQLite or PostgreSQL)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from intake.db import api_keys, history, idempotency, officers, reports
from intake.errors import ApiError


def now_utc() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def hash_secret(secret: str) -> str:
    """SHA-256 of a key or token: secrets are stored only as hashes."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_api_key(conn: Connection, *, channel: str) -> str:
    """A new channel API key; returns the secret (shown once)."""
    secret = "key_" + secrets.token_urlsafe(24)
    conn.execute(
        api_keys.insert().values(
            channel=channel, key_hash=hash_secret(secret), active=True, created_at=now_utc()
        )
    )
    return secret


def create_officer(conn: Connection, *, kelurahan_code: str, role: str) -> tuple[int, str]:
    """A new officer bound to one kelurahan; returns its id and bearer token (shown once)."""
    secret = "off_" + secrets.token_urlsafe(24)
    result = conn.execute(
        officers.insert().values(
            kelurahan_code=kelurahan_code,
            role=role,
            token_hash=hash_secret(secret),
            active=True,
            created_at=now_utc(),
        )
    )
    return int(result.inserted_primary_key[0]), secret  # type: ignore[index]


def find_api_key(conn: Connection, *, secret: str) -> RowMapping | None:
    """The active key with this secret, or None."""
    return (
        conn.execute(
            sa.select(api_keys).where(
                api_keys.c.key_hash == hash_secret(secret), api_keys.c.active.is_(True)
            )
        )
        .mappings()
        .first()
    )


def find_officer(conn: Connection, *, token: str) -> RowMapping | None:
    """The officer with this bearer token (active or not), or None."""
    return (
        conn.execute(sa.select(officers).where(officers.c.token_hash == hash_secret(token)))
        .mappings()
        .first()
    )


@dataclass(frozen=True, slots=True)
class NewReport:
    """A report waiting to be committed, with its idempotency key (if any)."""

    values: dict[str, Any]
    api_key_id: int
    idempotency_key: str | None
    body_hash: str


# every new row carries every column: a multi-row INSERT takes its columns from the first row
BLANK_REPORT = dict.fromkeys(c.name for c in reports.columns if c.name != "id")
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
SQLITE_INSERT_REPORTS = (
    f"INSERT INTO reports (id, {', '.join(BLANK_REPORT)}) VALUES (?{', ?' * len(BLANK_REPORT)})"
)
LAST_REPORT_ID = sa.select(sa.func.coalesce(sa.func.max(reports.c.id), 0))
INSERT_REPORTS = reports.insert().returning(reports.c.id, sort_by_parameter_order=True)
INSERT_HISTORY = history.insert()
INSERT_IDEMPOTENCY = idempotency.insert()


def insert_reports(
    conn: Connection, *, batch: list[NewReport], idempotency_hours: int = 24
) -> list[tuple[RowMapping, bool] | ApiError]:
    """Store a batch of reports, their first status and their idempotency keys.

    Three multi-row statements per batch, whatever its size: the group commit's payload.

    Returns
    -------
    outcomes
        Per item: ``(report, replayed)`` (``replayed`` when the key was seen before with the
        same body: nothing new is written), or an `ApiError` (422: the key was used with a
        different body).
    """
    at = now_utc()
    fresh_after = at - timedelta(hours=idempotency_hours)
    keys = {item.idempotency_key for item in batch if item.idempotency_key}
    seen: dict[tuple[int, str], tuple[str, int]] = {}
    if keys:
        rows = conn.execute(
            sa.select(
                idempotency.c.api_key_id,
                idempotency.c.key,
                idempotency.c.body_hash,
                idempotency.c.report_id,
                idempotency.c.created_at,
            ).where(idempotency.c.key.in_(keys))
        ).all()
        for r in rows:
            if as_utc(r.created_at) > fresh_after:  # type: ignore[operator]
                seen[(r.api_key_id, r.key)] = (r.body_hash, r.report_id)
            else:  # expired: the key may be used afresh
                conn.execute(
                    idempotency.delete().where(
                        idempotency.c.api_key_id == r.api_key_id, idempotency.c.key == r.key
                    )
                )
    outcomes: list[Any] = [None] * len(batch)
    fresh: list[int] = []
    first_of_key: dict[tuple[int, str], int] = {}
    for i, item in enumerate(batch):
        if item.idempotency_key is None:
            fresh.append(i)
            continue
        key = (item.api_key_id, item.idempotency_key)
        if key in seen:
            body_hash, report_id = seen[key]
            outcomes[i] = ("replay", report_id) if body_hash == item.body_hash else _KEY_REUSED
        elif key in first_of_key:  # the same key twice in one batch: the second replays the first
            first = batch[first_of_key[key]]
            outcomes[i] = (
                ("replay-of", first_of_key[key])
                if first.body_hash == item.body_hash
                else _KEY_REUSED
            )
        else:
            first_of_key[key] = i
            fresh.append(i)

    rows_in = [
        {
            **BLANK_REPORT,
            **batch[i].values,
            "token": str(uuid.uuid4()),
            "status": "menunggu",
            "created_at": at,
            "updated_at": at,
        }
        for i in fresh
    ]
    ids = _insert_received(conn, rows_in, at) if rows_in else []
    if ids:
        keyed = [
            {
                "api_key_id": batch[i].api_key_id,
                "key": batch[i].idempotency_key,
                "body_hash": batch[i].body_hash,
                "report_id": rid,
                "created_at": at,
            }
            for i, rid in zip(fresh, ids, strict=True)
            if batch[i].idempotency_key
        ]
        if keyed:
            conn.execute(INSERT_IDEMPOTENCY, keyed)
    stored = {i: {**row, "id": rid} for i, row, rid in zip(fresh, rows_in, ids, strict=True)}
    for i in fresh:
        outcomes[i] = (stored[i], False)
    replayed_ids = [o[1] for o in outcomes if isinstance(o, tuple) and o[0] == "replay"]
    earlier = {}
    if replayed_ids:
        earlier = {
            r["id"]: r
            for r in conn.execute(
                sa.select(reports).where(reports.c.id.in_(replayed_ids))
            ).mappings()
        }
    for i, o in enumerate(outcomes):
        if isinstance(o, tuple) and o[0] == "replay":
            outcomes[i] = (earlier[o[1]], True)
        elif isinstance(o, tuple) and o[0] == "replay-of":
            outcomes[i] = (stored[o[1]], True)
    return outcomes


def _insert_received(conn: Connection, rows: list[dict[str, Any]], at: datetime) -> list[int]:
    """Insert new report rows and their first status; return the reports' ids, in order.

    On SQLite, the group commit's hot spot, the rows go straight to the driver: SQLite cannot
    promise the order of the rows ``INSERT ... RETURNING`` gives back, so SQLAlchemy would send
    one statement per report, and its parameter processing cost more than the inserts. The ids
    are chosen here instead: the batch's transaction holds SQLite's write lock from its first
    statement (``BEGIN IMMEDIATE``, see `intake.db`), so no other writer can take them.
    """
    if conn.dialect.name != "sqlite":
        ids = [r[0] for r in conn.execute(INSERT_REPORTS, rows)]
        conn.execute(
            INSERT_HISTORY,
            [{"report_id": i, "status": "menunggu", "at": at, "note": "received"} for i in ids],
        )
        return ids
    first = conn.execute(LAST_REPORT_ID).scalar_one() + 1
    ids = list(range(first, first + len(rows)))
    stamp = at.strftime(SQLITE_DATETIME)  # the text SQLAlchemy's SQLite DateTime stores and reads
    conn.exec_driver_sql(
        SQLITE_INSERT_REPORTS,
        [
            (i, *(stamp if row[c] is at else row[c] for c in BLANK_REPORT))
            for i, row in zip(ids, rows, strict=True)
        ],
    )
    conn.exec_driver_sql(
        "INSERT INTO status_history (report_id, status, at, note) VALUES (?, ?, ?, ?)",
        [(i, "menunggu", stamp, "received") for i in ids],
    )
    return ids


_KEY_REUSED = ApiError(422, "Idempotency-Key was already used with a different request body")


def get_report(conn: Connection, *, report_id: int) -> RowMapping | None:
    """One report by id, or None."""
    return conn.execute(sa.select(reports).where(reports.c.id == report_id)).mappings().first()


def get_report_by_token(conn: Connection, *, token: str) -> RowMapping | None:
    """One report by its Open311 token, or None."""
    return conn.execute(sa.select(reports).where(reports.c.token == token)).mappings().first()


def report_history(conn: Connection, *, report_id: int) -> list[RowMapping]:
    """Status changes of a report, oldest first."""
    return list(
        conn.execute(
            sa.select(history).where(history.c.report_id == report_id).order_by(history.c.id)
        ).mappings()
    )


def change_status(
    conn: Connection,
    *,
    report_id: int,
    kelurahan_code: str,
    allowed_from: tuple[str, ...],
    status: str,
    note: str,
    extra: dict[str, Any] | None = None,
    extra_where: sa.ColumnElement[bool] | None = None,
) -> RowMapping:
    """Move a report of `kelurahan_code` to `status` if it is in one of `allowed_from`.

    A single conditional UPDATE: of several officers racing, exactly one changes the row.

    Raises
    ------
    ApiError
        404 if there is no such report in this kelurahan, 409 if its status does not allow it.
    """
    at = now_utc()
    condition = sa.and_(
        reports.c.id == report_id,
        reports.c.kelurahan_code == kelurahan_code,
        reports.c.status.in_(allowed_from),
    )
    if extra_where is not None:
        condition = sa.and_(condition, extra_where)
    values = {"status": status, "updated_at": at, **(extra or {})}
    changed = conn.execute(reports.update().where(condition).values(**values)).rowcount
    if changed != 1:
        current = conn.execute(
            sa.select(reports.c.status).where(
                reports.c.id == report_id, reports.c.kelurahan_code == kelurahan_code
            )
        ).first()
        if current is None:
            raise ApiError(404, f"no report {report_id} in your kelurahan")
        raise ApiError(
            409, f"report {report_id} is '{current.status}': it cannot move to '{status}' now"
        )
    conn.execute(history.insert().values(report_id=report_id, status=status, at=at, note=note))
    return get_report(conn, report_id=report_id)  # type: ignore[return-value]
