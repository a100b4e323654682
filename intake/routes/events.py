"""The event stream (server-sent events) and the administrator's webhook endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from intake import webhooks
from intake.deps import ALL_KELURAHAN, AdminDep, OfficerDep, Service, ServiceDep, officer_scope
from intake.errors import ApiError

router = APIRouter(tags=["events"])

STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "text/event-stream: id (for Last-Event-ID), event (its type), data (JSON)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}
PING_SECONDS = 15
ADMIN: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid officer token"},
    403: {"description": "not an administrator, or deactivated"},
}


def _stream(service: Service, scope: str | None, last_event_id: str | None) -> EventSourceResponse:
    if service.events is None:
        raise ApiError(503, "the event stream is not running", retry_after=5)
    last = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    hub = service.events

    async def messages() -> AsyncIterator[bytes]:
        async for batch in hub.stream(scope, last):
            yield b"".join(event.wire for event in batch)  # encoded once, for every subscriber

    return EventSourceResponse(messages(), ping=PING_SECONDS, headers={"Cache-Control": "no-store"})


@router.get(
    "/api/v1/events",
    response_class=EventSourceResponse,
    responses={**STREAM, 401: {"description": "no valid token"}, 403: {"description": "deactivated"}},
)  # fmt: skip
def officer_events(
    officer: OfficerDep,
    service: ServiceDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    """Events of your kelurahan (an administrator: every kelurahan) as they happen.

    ``report.received``, ``report.status_changed``, ``report.sla_nearing``,
    ``report.sla_breached``; each ``data`` is the JSON a webhook receives (public fields only).
    Reconnect with ``Last-Event-ID`` to be sent what you missed.
    """
    return _stream(service, officer_scope(officer), last_event_id)


@router.get("/api/v1/public/events", response_class=EventSourceResponse, responses=STREAM)
def public_events(
    service: ServiceDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    """Every kelurahan's events, for the public map: the same public payload, no token."""
    return _stream(service, None, last_event_id)


class Subscription(BaseModel):
    """A webhook subscription."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=webhooks.MAX_URL, description="http(s), public")
    kelurahan_code: str = Field(
        default=ALL_KELURAHAN,
        max_length=16,
        pattern=r"^(\*|[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4})$",
        description="Kemendagri code, or * for every kelurahan",
    )


class Subscribed(BaseModel):
    """A new subscription and its signing secret (shown once)."""

    id: int
    kelurahan_code: str
    url: str
    secret: str


@router.post(
    "/api/v1/admin/webhooks",
    status_code=201,
    response_model=Subscribed,
    tags=["admin"],
    responses={**ADMIN, 422: {"description": "URL not http(s), private, unresolvable or too long"}},
)  # fmt: skip
def add_webhook(body: Subscription, admin: AdminDep, service: ServiceDep) -> Subscribed:
    """Subscribe a URL to a kelurahan's events; payloads are signed with the returned secret."""
    if (
        body.kelurahan_code != ALL_KELURAHAN
        and service.kelurahan.table["kode_kemendagri"].ne(body.kelurahan_code).all()
    ):
        raise ApiError(422, f"no kelurahan {body.kelurahan_code}")
    allow = service.settings.webhook_allow_private
    with service.engine.begin() as conn:
        wid, secret = webhooks.subscribe(
            conn, kelurahan_code=body.kelurahan_code, url=body.url, allow_private=allow
        )
    return Subscribed(id=wid, kelurahan_code=body.kelurahan_code, url=body.url, secret=secret)


@router.get("/api/v1/admin/deliveries", tags=["admin"], responses=ADMIN)
async def list_deliveries(
    admin: AdminDep,
    service: ServiceDep,
    state: Annotated[Literal["pending", "delivered", "dead"], Query()] = "dead",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Webhook deliveries in a state, newest first: ``dead`` lists the dead letters."""

    def read() -> list[dict[str, Any]]:
        with service.engine.connect() as conn:
            return webhooks.list_deliveries(conn, state=state, limit=limit)

    return await run_in_threadpool(read)


@router.post(
    "/api/v1/admin/deliveries/{delivery_id}/retry",
    tags=["admin"],
    responses={**ADMIN, 404: {"description": "no dead delivery with this id"}},
)
def retry_delivery(
    delivery_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    admin: AdminDep,
    service: ServiceDep,
) -> dict[str, str]:
    """Queue a dead delivery again (404 if it is not dead)."""
    with service.engine.begin() as conn:
        if not webhooks.requeue(conn, delivery_id=delivery_id):
            raise ApiError(404, f"no dead delivery {delivery_id}")
    return {"detail": f"delivery {delivery_id} queued again"}
