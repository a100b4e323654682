"""Intake's records as the twin reads them: the open reports at a moment, and a period's times.

`twin forecast` starts the twin from these frames. They carry the shared column names of
`twin.model.warm_start.OPEN_REPORT_COLUMNS` (and of `twin.kpis`), so the twin never imports intake:
the composition root (`twin_cli`) opens the database here and hands the frames over. A moment in
the past is answered from the status history, as the database stood then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from intake.db import history, reports, schema_version

OPEN_REPORT_COLUMNS = (
    "report_id", "kelurahan_code", "category", "status", "received_at", "coordinated_at",
    "status_at", "crew", "agency", "lat", "lon",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Span:
    """What the database holds: its schema version, how many reports, the first and last receipt."""

    schema_version: int | None
    reports: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None


def span(conn: Connection) -> Span:
    """The database's schema version (None: no version table) and its reports' span."""
    version = None
    if sa.inspect(conn).has_table(schema_version.name):
        version = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    if not sa.inspect(conn).has_table(reports.name):
        return Span(version, 0, None, None)
    n, first, last = conn.execute(
        sa.select(
            sa.func.count(), sa.func.min(reports.c.created_at), sa.func.max(reports.c.created_at)
        )
    ).one()
    return Span(int(version) if version is not None else None, int(n), _stamp(first), _stamp(last))


def _stamp(value: object) -> pd.Timestamp | None:
    """A stored time as a UTC timestamp (SQLite returns it naive: every stored time is UTC)."""
    if value is None:
        return None
    t = pd.Timestamp(value)  # type: ignore[arg-type]
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _utc(values: pd.Series) -> pd.Series:  # type: ignore[type-arg]
    """Stored times as timezone-aware UTC (SQLite returns them naive; every stored time is UTC)."""
    return pd.to_datetime(values, utc=True)


def open_records(conn: Connection, *, as_of: datetime) -> pd.DataFrame:
    """Every report open at `as_of`: received by then, its status then not ``selesai``.

    Returns
    -------
    records
        `OPEN_REPORT_COLUMNS`; ``status`` and ``status_at`` are the last change at or before `as_of`,
        ``coordinated_at`` NaT if coordinated later.
    """
    candidates = conn.execute(
        sa.select(
            reports.c.id, reports.c.kelurahan_code, reports.c.service_code, reports.c.created_at,
            reports.c.coordinated_at, reports.c.crew, reports.c.agency, reports.c.lat, reports.c.lon,
        ).where(
            reports.c.created_at <= as_of,
            sa.or_(reports.c.closed_at.is_(None), reports.c.closed_at > as_of),
        )
    ).all()  # fmt: skip
    frame = pd.DataFrame(
        candidates,
        columns=["report_id", "kelurahan_code", "category", "received_at", "coordinated_at",
                 "crew", "agency", "lat", "lon"],
    )  # fmt: skip
    changes = pd.DataFrame(
        conn.execute(
            sa.select(history.c.report_id, history.c.status, history.c.at, history.c.id)
            .join(reports, reports.c.id == history.c.report_id)
            .where(
                history.c.at <= as_of,
                reports.c.created_at <= as_of,
                sa.or_(reports.c.closed_at.is_(None), reports.c.closed_at > as_of),
            )
        ).all(),
        columns=["report_id", "status", "status_at", "id"],
    )
    last = changes.sort_values(["report_id", "status_at", "id"]).groupby("report_id").tail(1)
    frame = frame.merge(last[["report_id", "status", "status_at"]], on="report_id", how="left")
    frame["status"] = frame["status"].fillna("menunggu")  # no history row: as first stored
    for col in ("received_at", "coordinated_at", "status_at"):
        frame[col] = _utc(frame[col])
    frame["status_at"] = frame["status_at"].fillna(frame["received_at"])
    frame.loc[frame["coordinated_at"] > pd.Timestamp(as_of), "coordinated_at"] = pd.NaT
    frame = frame[frame["status"] != "selesai"]
    return frame[list(OPEN_REPORT_COLUMNS)].sort_values("received_at").reset_index(drop=True)


def period_times(conn: Connection, *, since: datetime, as_of: datetime) -> pd.DataFrame:
    """Reports received from `since` to `as_of`, as `twin.kpis` reads them, seen at `as_of`.

    Returns
    -------
    times
        ``report_id, kelurahan, received_at, coordinated_at, closed_at`` (NaT: not reached by
        `as_of`).
    """
    rows = conn.execute(
        sa.select(
            reports.c.id, reports.c.kelurahan_code, reports.c.created_at,
            reports.c.coordinated_at, reports.c.closed_at,
        ).where(reports.c.created_at >= since, reports.c.created_at <= as_of)
    ).all()  # fmt: skip
    frame = pd.DataFrame(
        rows, columns=["report_id", "kelurahan", "received_at", "coordinated_at", "closed_at"]
    )
    cut = pd.Timestamp(as_of)
    for col in ("received_at", "coordinated_at", "closed_at"):
        frame[col] = _utc(frame[col])
        if col != "received_at":
            frame.loc[frame[col] > cut, col] = pd.NaT
    frame["kelurahan"] = frame["kelurahan"].astype(str)
    return frame
