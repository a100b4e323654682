"""Native JSON API for citizens' apps: report, and track a report."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from intake import store
from intake.deps import ApiKeyDep, Service, ServiceDep, client_address
from intake.errors import ApiError
from intake.models import ReportCreate, ReportId, ReportPublic, Token, report_public

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

IDEMPOTENCY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # visible ASCII, as the IETF draft allows
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_PATTERN)
IDEMPOTENCY_DOC = "retry-safe key, remembered 24 h; malformed: 400"
IDEMPOTENCY_SCHEMA = {"pattern": IDEMPOTENCY_PATTERN, "minLength": 1, "maxLength": 255}


def check_idempotency_key(key: str | None) -> str | None:
    """Validate an ``Idempotency-Key`` header (400 when malformed)."""
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, "malformed Idempotency-Key: use 1 to 255 visible ASCII characters")
    return key


def locate_or_422(service: Service, *, lat: float, lon: float) -> str:
    """The kelurahan code of a point, or 422 outside Jakarta."""
    code = service.kelurahan.locate(lon, lat)
    if code is None:
        raise ApiError(
            422, f"the point lat={lat}, lon={lon} lies outside Jakarta: no kelurahan handles it"
        )
    return code


async def create_report(
    service: Service,
    *,
    values: dict[str, Any],
    api_key_id: int,
    idempotency_key: str | None,
    body_hash: str,
) -> tuple[Any, bool]:
    """Commit a report through the group-commit writer (shared by the native and Open311 APIs)."""
    inflight = (api_key_id, idempotency_key) if idempotency_key else None
    if inflight is not None:
        if inflight in service.inflight:
            raise ApiError(
                409, "a request with this Idempotency-Key is still being processed; retry shortly"
            )
        service.inflight.add(inflight)
    try:
        report = store.NewReport(values, api_key_id, idempotency_key, body_hash)
        return await service.writer.submit(report)  # type: ignore[no-any-return]
    finally:
        if inflight is not None:
            service.inflight.discard(inflight)


@router.post(
    "",
    status_code=201,
    response_model=ReportPublic,
    responses={400: {"description": "malformed request"}, 401: {"description": "no valid API key"},
               409: {"description": "same Idempotency-Key in flight"},
               422: {"description": "invalid field, outside Jakarta, or key reused with another body"},
               503: {"description": "overloaded or not stored: retry after Retry-After, same key"}},
)  # fmt: skip
async def post_report(
    request: Request,
    body: ReportCreate,
    service: ServiceDep,
    api_key: ApiKeyDep,
    idempotency_key: Annotated[str | None, Header(description=IDEMPOTENCY_DOC, json_schema_extra=IDEMPOTENCY_SCHEMA)] = None,
) -> ReportPublic:  # fmt: skip
    """Receive a report; 201 means it is committed to durable storage.

    A retry with the same ``Idempotency-Key`` returns the same report; the same key with a
    different body is refused with 422. ``Location`` names the report's address.
    """
    public, replayed = await accept_report(
        service, body, api_key, idempotency_key, address=client_address(request.scope)
    )
    # a ready response skips FastAPI's second validation of the model (a hot path)
    headers = {"Location": location(public)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    content = public.model_dump(mode="json")
    return JSONResponse(content, status_code=201, headers=headers)  # type: ignore[return-value]


def location(public: ReportPublic) -> str:
    """The ``Location`` of a created report."""
    return f"/api/v1/reports/{public.id}"


async def accept_report(
    service: Service,
    body: ReportCreate,
    api_key: Any,
    idempotency_key: str | None,
    *,
    address: str,
) -> tuple[ReportPublic, bool]:
    """Route, commit and describe one native report (the endpoint and `intake.fastpath`).

    Returns
    -------
    public, replayed
        The public view of the stored report with its history as received, and whether it
        answers a replayed key.
    """
    key = check_idempotency_key(idempotency_key)
    service.limits.report(api_key["id"], address)
    kelurahan = locate_or_422(service, lat=body.lat, lon=body.lon)
    reporter = body.reporter
    values = {
        "service_code": body.category,
        "description": body.description,
        "lat": body.lat,
        "lon": body.lon,
        "kelurahan_code": kelurahan,
        "channel": body.channel or api_key["channel"],
        "media_url": body.media_url,
        "reporter_name": reporter.name if reporter else None,
        "reporter_email": reporter.email if reporter else None,
        "reporter_phone": reporter.phone if reporter else None,
    }
    # the model's field order makes its JSON canonical (pydantic's serializer: no Python dict walk)
    body_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    row, replayed = await create_report(
        service, values=values, api_key_id=api_key["id"], idempotency_key=key, body_hash=body_hash
    )
    # its history as received (a replay answers as the first time, whatever happened since)
    received = [{"status": "menunggu", "at": row["created_at"], "note": "received"}]
    return report_public(row, received, public_url=service.settings.public_url), replayed


@router.get(
    "/{report_id}",
    response_model=ReportPublic,
    responses={401: {"description": "no valid API key"}, 404: {"description": "no such report"}},
)
def get_report(report_id: ReportId, service: ServiceDep, _: ApiKeyDep) -> ReportPublic:
    """A report by its id, for a reporting channel (API key): exact, with its status history.

    Ids are sequential, so they are not public: the public tracks a report by its token.
    """
    with service.engine.connect() as conn:
        row = store.get_report(conn, report_id=report_id)
        if row is None:
            raise ApiError(404, f"no report {report_id}")
        history = store.report_history(conn, report_id=report_id)
    return report_public(row, history, public_url=service.settings.public_url)


@router.get(
    "/track/{token}",
    response_model=ReportPublic,
    responses={404: {"description": "no report with this token"}},
)
def track_report(token: Token, service: ServiceDep) -> ReportPublic:
    """Track a report by the token its POST answer carried (no key needed): its status and
    history, coordinates rounded to 3 decimal places (about 110 m)."""
    with service.engine.connect() as conn:
        row = store.get_report_by_token(conn, token=token)
        if row is None:
            raise ApiError(404, "no report with this token")
        history = store.report_history(conn, report_id=row["id"])
    return report_public(row, history, public_url=service.settings.public_url, exact=False)
