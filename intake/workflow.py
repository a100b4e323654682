"""The officers' workflow: queue, claim, resolve, coordinate, dispatch, hand over; KPI frames.

Keyword-only functions over a SQLAlchemy connection, every one scoped to a kelurahan: a report of
another kelurahan is answered exactly as one that does not exist (404). Status changes go through
`intake.outbox.change_status`: `intake.store.change_status`, a single conditional UPDATE, so of
racing officers exactly one wins, and its event, in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from intake import outbox, store
from intake.db import reports
from intake.errors import ApiError

CLAIMABLE = ("menunggu", "koordinasi", "disposisi")
DISPATCHABLE = ("menunggu", "koordinasi")
EPOCH = pd.Timestamp(0, tz="UTC")


def open_reports(
    conn: Connection, *, kelurahan_code: str, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    """A page of the open reports (not ``selesai``) of a kelurahan, oldest first, and their count."""
    condition = sa.and_(reports.c.kelurahan_code == kelurahan_code, reports.c.status != "selesai")
    rows = conn.execute(
        sa.select(reports)
        .where(condition)
        .order_by(reports.c.created_at, reports.c.id)
        .limit(limit)
        .offset(offset)
    ).mappings()
    count = conn.execute(sa.select(sa.func.count()).select_from(reports).where(condition))
    return list(rows), int(count.scalar_one())


def scoped_report(conn: Connection, *, report_id: int, kelurahan_code: str) -> RowMapping:
    """A report of this kelurahan (404 if it does not exist or belongs to another one)."""
    row = (
        conn.execute(
            sa.select(reports).where(
                reports.c.id == report_id, reports.c.kelurahan_code == kelurahan_code
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ApiError(404, f"no report {report_id} in your kelurahan")
    return row


def claim(conn: Connection, *, report_id: int, kelurahan_code: str, officer_id: int) -> RowMapping:
    """Take a report into work (-> ``proses``, claimed by this officer); 409 if already taken.

    A claim straight from ``menunggu`` is the kelurahan's first answer, so it counts as the
    coordination (``coordinated_at`` set now unless already set), as a hand-over does.
    """
    return outbox.change_status(
        conn,
        report_id=report_id,
        kelurahan_code=kelurahan_code,
        allowed_from=CLAIMABLE,
        status="proses",
        note=f"claimed by officer {officer_id}",
        extra={"claimed_by": officer_id, "coordinated_at": _coordinated_now()},
    )


def check_resolvable(
    conn: Connection, *, report_id: int, kelurahan_code: str, officer_id: int
) -> None:
    """Refuse early (before a photo is processed) what `resolve` would refuse.

    Raises
    ------
    ApiError
        404 not in this kelurahan, 409 not in ``proses``, 403 claimed by another officer.
    """
    row = scoped_report(conn, report_id=report_id, kelurahan_code=kelurahan_code)
    if row["status"] != "proses":
        raise ApiError(
            409,
            f"report {report_id} is '{row['status']}': only a report in 'proses' "
            "can be resolved (claim it first)",
        )
    if row["claimed_by"] != officer_id:
        raise ApiError(
            403, f"report {report_id} is claimed by another officer: only they can resolve it"
        )


def resolve(
    conn: Connection,
    *,
    report_id: int,
    kelurahan_code: str,
    officer_id: int,
    photo_path: str,
    note: str | None,
) -> RowMapping:
    """Close a report claimed by this officer (-> ``selesai``) with its proof photo."""
    try:
        return outbox.change_status(
            conn,
            report_id=report_id,
            kelurahan_code=kelurahan_code,
            allowed_from=("proses",),
            status="selesai",
            note=note or "resolved with a proof photo",
            extra={"closed_at": store.now_utc(), "photo_path": photo_path},
            extra_where=reports.c.claimed_by == officer_id,
        )
    except ApiError as exc:
        if exc.status == 409:  # changed since check_resolvable: say why precisely
            check_resolvable(
                conn, report_id=report_id, kelurahan_code=kelurahan_code, officer_id=officer_id
            )
        raise


def _coordinated_now() -> sa.ColumnElement[datetime]:
    """``coordinated_at`` kept if already set, else now."""
    now = sa.literal(store.now_utc(), reports.c.coordinated_at.type)
    return sa.func.coalesce(reports.c.coordinated_at, now)


def coordinate(conn: Connection, *, report_id: int, kelurahan_code: str) -> RowMapping:
    """Acknowledge a new report (``menunggu`` -> ``koordinasi``), setting ``coordinated_at``."""
    return outbox.change_status(
        conn,
        report_id=report_id,
        kelurahan_code=kelurahan_code,
        allowed_from=("menunggu",),
        status="koordinasi",
        note="coordinated",
        extra={"coordinated_at": store.now_utc()},
    )


def dispatch(conn: Connection, *, report_id: int, kelurahan_code: str, crew: str) -> RowMapping:
    """Send a field crew (``menunggu``/``koordinasi`` -> ``disposisi``)."""
    return _dispose(conn, report_id, kelurahan_code, f"dispatched to crew {crew}", crew=crew)


def handover(conn: Connection, *, report_id: int, kelurahan_code: str, agency: str) -> RowMapping:
    """Hand a report to another agency (``menunggu``/``koordinasi`` -> ``disposisi``)."""
    return _dispose(conn, report_id, kelurahan_code, f"handed over to {agency}", agency=agency)


def _dispose(
    conn: Connection, report_id: int, kelurahan_code: str, note: str, **to: str
) -> RowMapping:
    """Disposisi: to a crew or an agency (`to`), coordinated now if it was not yet."""
    return outbox.change_status(
        conn,
        report_id=report_id,
        kelurahan_code=kelurahan_code,
        allowed_from=DISPATCHABLE,
        status="disposisi",
        note=note,
        extra={**to, "coordinated_at": _coordinated_now()},
    )


def hours_since_epoch(moment: datetime) -> float:
    """A moment on the hour scale of `report_times`."""
    return float((pd.Timestamp(moment) - EPOCH) / pd.Timedelta(hours=1))


def _hours(values: pd.Series) -> np.ndarray:  # type: ignore[type-arg]
    """Hours since the Unix epoch of stored times (naive ones are UTC); NaN for None."""
    stamps = pd.to_datetime(values, utc=True)
    return ((stamps - EPOCH) / pd.Timedelta(hours=1)).to_numpy(dtype=float)


def report_times(conn: Connection, *, kelurahan_code: str | None = None) -> pd.DataFrame:
    """One row per report for `twin.kpis`: ``kelurahan, received_h, coordinated_h, closed_h``.

    Parameters
    ----------
    conn
        A database connection.
    kelurahan_code
        Only this kelurahan's reports; None: every report.
    """
    query = sa.select(
        reports.c.kelurahan_code,
        reports.c.created_at,
        reports.c.coordinated_at,
        reports.c.closed_at,
    )
    if kelurahan_code is not None:
        query = query.where(reports.c.kelurahan_code == kelurahan_code)
    rows = pd.DataFrame(
        conn.execute(query).all(),
        columns=["kelurahan", "created_at", "coordinated_at", "closed_at"],
        dtype=object,
    )
    return pd.DataFrame(
        {
            "kelurahan": rows["kelurahan"].astype(str),
            "received_h": _hours(rows["created_at"]),
            "coordinated_h": _hours(rows["coordinated_at"]),
            "closed_h": _hours(rows["closed_at"]),
        }
    )
