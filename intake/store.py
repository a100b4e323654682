"""Persistence: keyword-only functions over a SQLAlchemy connection (SQLite or PostgreSQL)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
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


def insert_report(
    conn: Connection,
    *,
    values: dict[str, Any],
    api_key_id: int,
    idempotency_key: str | None,
    body_hash: str,
    idempotency_hours: int = 24,
) -> tuple[RowMapping, bool]:
    """Store a report, its first status and its idempotency key, in the caller's transaction.

    Returns
    -------
    report, replayed
        The stored report; ``replayed`` is True when the key was seen before with the same
        body (nothing new is written).

    Raises
    ------
    ApiError
        422 when the key was used before with a different body.
    """
    at = now_utc()
    if idempotency_key is not None:
        seen = conn.execute(
            sa.select(
                idempotency.c.report_id, idempotency.c.body_hash, idempotency.c.created_at
            ).where(idempotency.c.api_key_id == api_key_id, idempotency.c.key == idempotency_key)
        ).first()
        if seen is not None and as_utc(seen.created_at) > at - timedelta(hours=idempotency_hours):  # type: ignore[operator]
            if seen.body_hash != body_hash:
                raise ApiError(
                    422, "Idempotency-Key was already used with a different request body"
                )
            return get_report(conn, report_id=seen.report_id), True  # type: ignore[return-value]
        if seen is not None:  # expired: the key may be used afresh
            conn.execute(
                idempotency.delete().where(
                    idempotency.c.api_key_id == api_key_id, idempotency.c.key == idempotency_key
                )
            )
    row = {
        **values,
        "token": str(uuid.uuid4()),
        "status": "menunggu",
        "created_at": at,
        "updated_at": at,
    }
    report_id = int(conn.execute(reports.insert().values(**row)).inserted_primary_key[0])  # type: ignore[index]
    conn.execute(
        history.insert().values(report_id=report_id, status="menunggu", at=at, note="received")
    )
    if idempotency_key is not None:
        conn.execute(
            idempotency.insert().values(
                api_key_id=api_key_id,
                key=idempotency_key,
                body_hash=body_hash,
                report_id=report_id,
                created_at=at,
            )
        )
    blank = dict.fromkeys(reports.columns.keys())  # the row as a SELECT would return it
    return {**blank, **row, "id": report_id}, False  # type: ignore[return-value]


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
