"""Open311 service request updates: mySociety's ``servicerequestupdates`` extension.

One update per status change that intake keeps in its history (``update_id`` is the history
row's id, stable and increasing), in the format FixMyStreet reads
(https://github.com/mysociety/fixmystreet/wiki/Open311-FMS---Proposed-differences-to-Open311):
``update_id``, ``service_request_id``, ``status`` (``open`` or ``closed``), ``updated_datetime``,
``description`` and ``media_url`` (the public proof photo on the update that closed a report),
plus the extension field ``jakarta_status``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from intake.deps import ServiceDep
from intake.models import photo_url
from intake.open311_format import check_format, date_window, iso, render
from intake.routes.open311 import ERRORS
from intake.search import status_updates
from twin.entities import OPEN_STATUSES

router = APIRouter(prefix="/open311/v2", tags=["open311"])


def update_item(row: Any, public_url: str) -> dict[str, Any]:
    """One status change as a mySociety ``request_update``."""
    closed = row["status"] not in OPEN_STATUSES
    return {
        "update_id": str(row["id"]),
        "service_request_id": str(row["report_id"]),
        "status": "closed" if closed else "open",
        "updated_datetime": iso(row["at"]),
        "description": row["note"] or "",
        "media_url": photo_url(public_url, row["photo_path"]) if closed else None,
        "jakarta_status": str(row["status"]).capitalize(),
    }


@router.get("/servicerequestupdates.{fmt}", responses={400: ERRORS[400], 404: ERRORS[404]})
def service_request_updates(
    fmt: str,
    service: ServiceDep,
    start_date: Annotated[str | None, Query(description="ISO 8601 with timezone")] = None,
    end_date: Annotated[
        str | None, Query(description="ISO 8601 with timezone; at most 90 days after start_date")
    ] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> Response:
    """Status updates made between ``start_date`` and ``end_date``, oldest first.

    By default those of the last 90 days; a client polls with ``start_date`` set to the
    ``updated_datetime`` of the last update it saw (and skips the ``update_id`` s it has).
    """
    fmt = check_format(fmt)
    start, end = date_window(start_date, end_date)
    with service.engine.connect() as conn:
        rows = status_updates(
            conn, start=start, end=end, limit=page_size, offset=(page - 1) * page_size
        )
    public_url = service.settings.public_url
    return render(fmt, "service_request_updates", [update_item(r, public_url) for r in rows])
