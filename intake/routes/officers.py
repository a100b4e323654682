"""Kelurahan officers and coordinators: the queue, claim, resolve with a proof photo, coordinate,
dispatch a crew, hand over to an agency.

Every endpoint is scoped to the caller's kelurahan: a report of another kelurahan is answered 404,
exactly as one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from intake import photos, store, workflow
from intake.deps import CoordinatorDep, OfficerDep, ServiceDep
from intake.errors import NAME_PATTERN, TEXT_PATTERN, ApiError
from intake.models import OfficerReport, OfficerReports, ReportId, officer_view

MAX_NOTE = 1000

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid officer token"},
    404: {"description": "no such report in your kelurahan"},
}
CHANGE = {**NOT_FOUND, 409: {"description": "the report's status does not allow this now"}}
COORDINATOR = {**CHANGE, 403: {"description": "not a coordinator"}}

officer_router = APIRouter(prefix="/api/v1/officer", tags=["officers"])
coordinator_router = APIRouter(prefix="/api/v1/coordinator", tags=["coordinators"])


class Dispatch(BaseModel):
    """The field crew sent to a report."""

    model_config = ConfigDict(extra="forbid")
    crew: str = Field(
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="the crew's name or call sign",
    )


class Handover(BaseModel):
    """The agency (dinas) a report is handed over to."""

    model_config = ConfigDict(extra="forbid")
    agency: str = Field(
        min_length=1, max_length=100, pattern=NAME_PATTERN, description="the receiving agency"
    )


@officer_router.get("/queue", response_model=OfficerReports, responses={401: NOT_FOUND[401]})
def queue(
    officer: OfficerDep,
    service: ServiceDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OfficerReports:
    """Open reports (not ``selesai``) of your kelurahan, oldest first; ``count`` counts them all."""
    with service.engine.connect() as conn:
        rows, count = workflow.open_reports(
            conn,
            kelurahan_code=officer["kelurahan_code"],
            limit=page_size,
            offset=(page - 1) * page_size,
        )
    return OfficerReports(
        data=[officer_view(row, public_url=service.settings.public_url) for row in rows],
        count=count,
    )


@officer_router.get("/reports/{report_id}", response_model=OfficerReport, responses=NOT_FOUND)
def officer_report(report_id: ReportId, officer: OfficerDep, service: ServiceDep) -> OfficerReport:
    """One report of your kelurahan with its status history."""
    with service.engine.connect() as conn:
        row = workflow.scoped_report(
            conn, report_id=report_id, kelurahan_code=officer["kelurahan_code"]
        )
        return officer_view(
            row,
            store.report_history(conn, report_id=report_id),
            public_url=service.settings.public_url,
        )


@officer_router.post("/reports/{report_id}/claim", response_model=OfficerReport, responses=CHANGE)
def claim(report_id: ReportId, officer: OfficerDep, service: ServiceDep) -> OfficerReport:
    """Take a report into work (``proses``); of officers racing for it exactly one wins (409)."""
    with service.engine.begin() as conn:
        row = workflow.claim(
            conn,
            report_id=report_id,
            kelurahan_code=officer["kelurahan_code"],
            officer_id=officer["id"],
        )
    return officer_view(row, public_url=service.settings.public_url)


@officer_router.post(
    "/reports/{report_id}/resolve",
    response_model=OfficerReport,
    responses={**CHANGE, 403: {"description": "claimed by another officer"},
               413: {"description": "photo over the byte, pixel or decoding-memory limit"},
               503: {"description": "too many photos at once: retry after Retry-After"},
               415: {"description": "photo neither JPEG nor PNG"},
               422: {"description": "photo missing, corrupt or truncated"}},
)  # fmt: skip
def resolve(
    report_id: ReportId,
    officer: OfficerDep,
    service: ServiceDep,
    photo: Annotated[UploadFile, File(description="proof photo, JPEG or PNG")],
    note: Annotated[str | None, Form(max_length=MAX_NOTE, pattern=TEXT_PATTERN)] = None,
) -> OfficerReport:
    """Close a report you claimed (``proses`` -> ``selesai``) with a proof photo.

    The photo is recognised by its content, stripped of all metadata (EXIF, GPS), stored under a
    server-chosen name, and only then is the report closed.
    """
    kelurahan, officer_id = officer["kelurahan_code"], officer["id"]
    with service.engine.connect() as conn:
        workflow.check_resolvable(
            conn, report_id=report_id, kelurahan_code=kelurahan, officer_id=officer_id
        )
    settings = service.settings
    # a few photos at a time, so concurrent uploads cannot take all the memory (issue 17)
    if not service.photo_slots.acquire(timeout=settings.photo_wait_seconds):
        raise ApiError(503, "too many photos are being processed; retry shortly", retry_after=5)
    try:
        data = photos.read_limited(photo.file, max_bytes=settings.max_photo_bytes)
        # in the photo threads: the large buffers stay in their few malloc arenas
        name = service.photo_pool.submit(
            photos.store_photo,
            data,
            media_dir=settings.media_dir,
            max_bytes=settings.max_photo_bytes,
            max_pixels=settings.max_photo_pixels,
            max_decode_bytes=settings.max_photo_decode_bytes,
        ).result()
    finally:
        service.photo_slots.release()
    try:
        with service.engine.begin() as conn:
            row = workflow.resolve(
                conn,
                report_id=report_id,
                kelurahan_code=kelurahan,
                officer_id=officer_id,
                photo_path=name,
                note=note,
            )
    except BaseException:
        photos.remove_photo(settings.media_dir, name)
        raise
    return officer_view(row, public_url=service.settings.public_url)


@coordinator_router.post(
    "/reports/{report_id}/coordinate", response_model=OfficerReport, responses=COORDINATOR
)
def coordinate(
    report_id: ReportId, coordinator: CoordinatorDep, service: ServiceDep
) -> OfficerReport:
    """Acknowledge a new report (``menunggu`` -> ``koordinasi``)."""
    with service.engine.begin() as conn:
        row = workflow.coordinate(
            conn, report_id=report_id, kelurahan_code=coordinator["kelurahan_code"]
        )
    return officer_view(row, public_url=service.settings.public_url)


@coordinator_router.post(
    "/reports/{report_id}/dispatch", response_model=OfficerReport, responses=COORDINATOR
)
def dispatch(
    report_id: ReportId, body: Dispatch, coordinator: CoordinatorDep, service: ServiceDep
) -> OfficerReport:
    """Send a field crew (``menunggu``/``koordinasi`` -> ``disposisi``)."""
    with service.engine.begin() as conn:
        row = workflow.dispatch(
            conn, report_id=report_id, kelurahan_code=coordinator["kelurahan_code"], crew=body.crew
        )
    return officer_view(row, public_url=service.settings.public_url)


@coordinator_router.post(
    "/reports/{report_id}/handover", response_model=OfficerReport, responses=COORDINATOR
)
def handover(
    report_id: ReportId, body: Handover, coordinator: CoordinatorDep, service: ServiceDep
) -> OfficerReport:
    """Hand a report over to another agency (``menunggu``/``koordinasi`` -> ``disposisi``)."""
    with service.engine.begin() as conn:
        row = workflow.handover(
            conn,
            report_id=report_id,
            kelurahan_code=coordinator["kelurahan_code"],
            agency=body.agency,
        )
    return officer_view(row, public_url=service.settings.public_url)


router = APIRouter()
router.include_router(officer_router)
router.include_router(coordinator_router)
