"""Listing reports: filters and paging over the public columns (SQLite and PostgreSQL).

Only public columns are selected: a reporter's name, email, phone and device id never leave the
database through a listing, whatever the caller renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from intake.db import history, reports

MAX_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL

PUBLIC_COLUMNS = (
    reports.c.id,
    reports.c.service_code,
    reports.c.description,
    reports.c.lat,
    reports.c.lon,
    reports.c.address_string,
    reports.c.kelurahan_code,
    reports.c.channel,
    reports.c.status,
    reports.c.media_url,
    reports.c.photo_path,  # a server-chosen file name: its URL is the public proof photo
    reports.c.crew,
    reports.c.agency,
    reports.c.created_at,
    reports.c.updated_at,
    reports.c.coordinated_at,
    reports.c.closed_at,
)


def _utc(value: datetime) -> datetime:
    """Stored times are UTC (naive on SQLite): compare in UTC."""
    return value.astimezone(UTC)


def list_reports(
    conn: Connection,
    *,
    ids: Sequence[int] | None = None,
    service_codes: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    kelurahan_code: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[RowMapping]:
    """Reports matching every given filter, newest first, public columns only.

    Parameters
    ----------
    conn
        A database connection.
    ids
        Only these report ids (ids beyond the column's range match nothing).
    service_codes
        Only these service codes.
    statuses
        Only these Jakarta statuses (menunggu, ..., selesai).
    kelurahan_code
        Only reports routed to this kelurahan.
    start, end
        Only reports created in ``[start, end]`` (timezone-aware datetimes, both inclusive).
    limit, offset
        The page: at most `limit` rows after skipping `offset`.

    Returns
    -------
    rows
        The matching reports, ordered by creation time then id, newest first.
    """
    query = sa.select(*PUBLIC_COLUMNS)
    if ids is not None:
        query = query.where(reports.c.id.in_([i for i in ids if 0 < i <= MAX_ID]))
    if service_codes is not None:
        query = query.where(reports.c.service_code.in_(list(service_codes)))
    if statuses is not None:
        query = query.where(reports.c.status.in_(list(statuses)))
    if kelurahan_code is not None:
        query = query.where(reports.c.kelurahan_code == kelurahan_code)
    if start is not None:
        query = query.where(reports.c.created_at >= _utc(start))
    if end is not None:
        query = query.where(reports.c.created_at <= _utc(end))
    query = (
        query.order_by(reports.c.created_at.desc(), reports.c.id.desc()).limit(limit).offset(offset)
    )
    return list(conn.execute(query).mappings())


def latest_notes(conn: Connection, *, report_ids: Sequence[int]) -> dict[int, str | None]:
    """The note of each report's latest status change.

    Parameters
    ----------
    conn
        A database connection.
    report_ids
        The reports to look up.

    Returns
    -------
    notes
        Report id to the note of its newest history row (reports without history are absent).
    """
    if not report_ids:
        return {}
    newest = (
        sa.select(sa.func.max(history.c.id))
        .where(history.c.report_id.in_(list(report_ids)))
        .group_by(history.c.report_id)
    )
    rows = conn.execute(
        sa.select(history.c.report_id, history.c.note).where(history.c.id.in_(newest))
    )
    return {int(row.report_id): row.note for row in rows}


def status_updates(
    conn: Connection, *, start: datetime, end: datetime, limit: int, offset: int = 0
) -> list[RowMapping]:
    """Status changes made in ``[start, end]``, oldest first, with their report's proof photo.

    Parameters
    ----------
    conn
        A database connection.
    start, end
        Timezone-aware bounds of the change's time, both inclusive.
    limit, offset
        The page.

    Returns
    -------
    rows
        ``id, report_id, status, at, note, photo_path`` (the report's photo, for the update
        that closed it).
    """
    query = (
        sa.select(
            history.c.id,
            history.c.report_id,
            history.c.status,
            history.c.at,
            history.c.note,
            reports.c.photo_path,
        )
        .join(reports, reports.c.id == history.c.report_id)
        .where(history.c.at >= _utc(start), history.c.at <= _utc(end))
        .order_by(history.c.at, history.c.id)
        .limit(limit)
        .offset(offset)
    )
    return list(conn.execute(query).mappings())


def status_histories(conn: Connection, *, report_ids: Sequence[int]) -> dict[int, list[RowMapping]]:
    """Every status change of each report, oldest first (reports without history are absent)."""
    if not report_ids:
        return {}
    rows = conn.execute(
        sa.select(history.c.id, history.c.report_id, history.c.status, history.c.at, history.c.note)
        .where(history.c.report_id.in_(list(report_ids)))
        .order_by(history.c.report_id, history.c.id)
    ).mappings()
    found: dict[int, list[RowMapping]] = {}
    for row in rows:
        found.setdefault(int(row["report_id"]), []).append(row)
    return found
