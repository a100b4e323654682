"""Bulk data: ``GET /api/v1/export``, one row per report, streamed (see `intake.export`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from intake.deps import OfficerDep, ServiceDep, officer_scope
from intake.errors import ApiError
from intake.export import (
    FORMATS,
    ExportRange,
    ExportRangeError,
    encode,
    export_range,
    kelurahan_places,
    record_batches,
)

router = APIRouter(prefix="/api/v1", tags=["export"])


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "one row per report (columns in docs/records.md)",
            "content": {media: {"schema": {"type": "string"}} for media in FORMATS.values()},
        },
        400: {"description": "range reversed, over a year, or malformed"},
        401: {"description": "no valid officer token"},
        403: {"description": "deactivated officer"},
    },
)
def export(
    officer: OfficerDep,
    service: ServiceDep,
    since: Annotated[date, Query(description="first day, e.g. 2026-01-01")],
    until: Annotated[date, Query(description="last day (inclusive), at most 366 days on")],
    format: Annotated[Literal["csv", "parquet"], Query()] = "csv",
) -> StreamingResponse:
    """Reports received from ``since`` to ``until`` (at most a year), oldest first.

    An officer or coordinator gets their kelurahan's reports, an administrator every one. No
    reporter's contact or description; coordinates rounded to 3 places (about 110 m). The body
    is streamed a batch of rows at a time.
    """
    try:
        span = export_range(since.isoformat(), until.isoformat())
    except ExportRangeError as exc:
        raise ApiError(400, str(exc)) from None
    scope = officer_scope(officer)
    places = kelurahan_places(service.kelurahan.table)

    def body(span: ExportRange = span) -> Iterator[bytes]:
        with service.engine.connect() as conn:
            batches = record_batches(conn, span, places=places, kelurahan_code=scope)
            yield from encode(batches, format)

    name = f"reports_{span.start:%Y%m%d}_{span.end:%Y%m%d}.{format}"
    return StreamingResponse(
        body(),
        media_type=FORMATS[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
