"""Bulk data for researchers: one row per report, streamed as CSV or Parquet.

The columns are `twin.entities.RECORD_COLUMNS`, the twin's ``reports.parquet`` vocabulary, then
intake's own ``status``. A reporter's name, email, phone and device never leave the database
(they are not selected), nor a description (free text may quote them); coordinates are rounded
to `intake.models.COORDINATE_DECIMALS` places. Rows are read with a server-side cursor and
written a batch at a time, so memory stays flat whatever the number of rows.

Stages that intake records: ``submitted_at`` and ``received_at`` (when the report was stored),
``coordinated_at``, ``assigned_at`` (the first ``disposisi`` or ``proses``: a crew, an agency
or an officer took it), ``done_at`` and ``closed_at`` (``selesai``). ``picked_up_at`` (the desk
starts handling) and ``arrived_at`` (a crew at the site) are moments only the twin knows: always
empty here.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from intake.db import history, reports
from intake.models import COORDINATE_DECIMALS
from twin.entities import RECORD_COLUMNS

FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
MAX_SPAN = timedelta(days=366)
BATCH_ROWS = 20_000

STAMP = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("report_id", pa.int64()),
        ("kelurahan_code", pa.string()),
        ("kecamatan", pa.string()),
        ("kota", pa.string()),
        ("category", pa.string()),
        ("channel", pa.string()),
        ("outcome", pa.string()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        *((name, STAMP) for name in RECORD_COLUMNS if name.endswith("_at")),
        ("status", pa.string()),
    ]
)
assert SCHEMA.names[: len(RECORD_COLUMNS)] == list(RECORD_COLUMNS)


class ExportRangeError(ValueError):
    """A refused export range (the message is one line for the user)."""


@dataclass(frozen=True, slots=True)
class ExportRange:
    """Reports received in ``[start, end)`` (UTC)."""

    start: datetime
    end: datetime


def _moment(name: str, text: str, *, end: bool) -> datetime:
    """A date (its start; the day after for an end: whole days are inclusive) or a datetime."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=end), time(), UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ExportRangeError(
            f"{name} {text[:40]!r}: expected a date (2026-01-31) or an ISO 8601 datetime"
        ) from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def export_range(since: str, until: str) -> ExportRange:
    """Parse and check an export's range: ``until`` not before ``since``, at most a year.

    Parameters
    ----------
    since, until
        Dates (whole days, both inclusive) or ISO 8601 datetimes (UTC when no zone is given).

    Raises
    ------
    ExportRangeError
        Malformed, reversed, or longer than 366 days.
    """
    start = _moment("since", since, end=False)
    end = _moment("until", until, end=True)
    if end <= start:
        raise ExportRangeError(f"until {until!r} is before since {since!r}")
    if end - start > MAX_SPAN:
        raise ExportRangeError(
            f"since {since!r} to until {until!r} spans more than a year: export at most 366 days"
        )
    return ExportRange(start, end)


def _first(status: str) -> sa.ColumnElement[datetime]:
    return sa.func.min(sa.case((history.c.status == status, history.c.at)))


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value if value.tzinfo else value.replace(tzinfo=UTC)


def record_batches(
    conn: Connection,
    span: ExportRange,
    *,
    places: dict[str, tuple[str, str]],
    kelurahan_code: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """The reports received in `span`, oldest first, as record batches of `SCHEMA`.

    Parameters
    ----------
    conn
        A database connection (read with a server-side cursor where the driver has one).
    span
        The range of reception times.
    places
        Kelurahan code to ``(kecamatan, kota)``.
    kelurahan_code
        Only this kelurahan's reports; None: all.
    batch_rows
        Rows per batch (a Parquet row group).
    """
    stages = (
        sa.select(
            history.c.report_id,
            _first("disposisi").label("disposisi_at"),
            _first("proses").label("proses_at"),
        )
        .group_by(history.c.report_id)
        .subquery()
    )
    query = (
        sa.select(
            reports.c.id,
            reports.c.kelurahan_code,
            reports.c.service_code,
            reports.c.channel,
            reports.c.status,
            reports.c.agency,
            reports.c.lat,
            reports.c.lon,
            reports.c.created_at,
            reports.c.coordinated_at,
            reports.c.closed_at,
            stages.c.disposisi_at,
            stages.c.proses_at,
        )
        .outerjoin(stages, stages.c.report_id == reports.c.id)
        .where(reports.c.created_at >= span.start, reports.c.created_at < span.end)
        .order_by(reports.c.created_at, reports.c.id)
    )
    if kelurahan_code is not None:
        query = query.where(reports.c.kelurahan_code == kelurahan_code)
    result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(query)
    for rows in result.partitions(batch_rows):
        columns: dict[str, list[object]] = {name: [] for name in SCHEMA.names}
        for r in rows:
            kecamatan, kota = places.get(r.kelurahan_code, (None, None))
            received = _utc(r.created_at)
            closed = _utc(r.closed_at)
            assigned = [t for t in (_utc(r.disposisi_at), _utc(r.proses_at)) if t is not None]
            values = {
                "report_id": r.id,
                "kelurahan_code": r.kelurahan_code,
                "kecamatan": kecamatan,
                "kota": kota,
                "category": r.service_code,
                "channel": r.channel,
                "outcome": None if closed is None else "agency" if r.agency else "ppsu",
                "lon": round(r.lon, COORDINATE_DECIMALS),
                "lat": round(r.lat, COORDINATE_DECIMALS),
                "submitted_at": received,
                "received_at": received,
                "picked_up_at": None,  # the desk's pick-up is not recorded apart from coordination
                "coordinated_at": _utc(r.coordinated_at),
                "assigned_at": min(assigned) if assigned else None,
                "arrived_at": None,
                "done_at": closed,
                "closed_at": closed,
                "status": r.status,
            }
            for name, value in values.items():
                columns[name].append(value)
        yield pa.RecordBatch.from_pydict(columns, schema=SCHEMA)


class _Chunks(io.RawIOBase):
    """A write-only file that keeps what was written until `take` hands it on."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def encode(batches: Iterator[pa.RecordBatch], fmt: str) -> Iterator[bytes]:
    """Encode record batches as CSV (a header, then rows) or Parquet (a row group per batch).

    Yields the bytes as they are produced: a batch at a time, never the whole file.
    """
    sink = _Chunks()
    writer: pacsv.CSVWriter | pq.ParquetWriter
    if fmt == "csv":
        writer = pacsv.CSVWriter(sink, SCHEMA)
    else:
        writer = pq.ParquetWriter(sink, SCHEMA, compression="zstd")
    try:
        for batch in batches:
            writer.write_batch(batch)
            yield sink.take()
    except BaseException:  # the client went away or the database failed: no footer
        writer.close()
        raise
    writer.close()
    yield sink.take()


def kelurahan_places(table: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Kelurahan code to ``(kecamatan, kota)`` from the kelurahan table."""
    return {
        str(code): (str(kec), str(kota))
        for code, kec, kota in zip(
            table["kode_kemendagri"], table["kecamatan"], table["kota"], strict=True
        )
    }
