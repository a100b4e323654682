"""The intake API: app factory, wiring of routers, limits and error handling.

Every error is a 4xx with one readable ``detail`` (Open311 paths answer in the specification's
error-list format instead); an unexpected exception is logged without the request body (which
may carry a reporter's contact) and answered 500.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intake.cache import RecentResults
from intake.config import Settings
from intake.db import make_engine, migrate
from intake.deps import Service, authenticate_key, authenticate_officer, client_address
from intake.errors import ApiError, describe_errors
from intake.events import EventHub
from intake.fastpath import ReportFastPath
from intake.openapi import corrected_openapi
from intake.webhooks import Deliverer, DeliveryPolicy
from intake.writer import GroupCommitWriter
from twin.city.datadir import resolve_data_dir
from twin.city.kelurahan import KelurahanIndex, load_kelurahan

log = logging.getLogger(__name__)

UNUSABLE = "the request holds a value the database cannot take (such as a NUL character)"
AUTH_HEADERS = (b"x-api-key", b"authorization")
SECRET_SEGMENT = re.compile(r"[^/.]{16,}")  # a token or a photo name, not an id or a word
ErrorRenderer = Any  # (request, status, message) -> Response


def describe_validation(exc: RequestValidationError) -> tuple[int, str]:
    """One line for a validation failure; malformed JSON is a 400, the rest 422."""
    return describe_errors(exc.errors())


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise ApiError(413, f"request body over {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)

    async def _reject(self, send: Send) -> None:
        body = f'{{"detail":"request body over {self.max_bytes} bytes"}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def loggable(path: str) -> str:
    """`path` for a log line: long segments (tracking tokens, photo names) replaced."""
    return SECRET_SEGMENT.sub("<redacted>", path)


class CredentialsFirst:
    """Check the credentials of a POST that needs them before its body is read.

    FastAPI reads a body before it solves the dependencies that authenticate: a client without
    a key could make the server read 12 MB to answer 401. The routes' own dependencies still
    check (from the cache) and keep the contract; this only answers earlier.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "POST" or not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        service = scope["app"].state.service
        headers = {k: v for k, v in scope["headers"] if k in AUTH_HEADERS}
        try:
            if path.rstrip("/") == "/api/v1/reports":
                key = headers.get(b"x-api-key", b"").decode("latin-1")
                authenticate_key(service, key, client_address(scope))
            elif path.startswith(("/api/v1/officer/", "/api/v1/coordinator/")):
                bearer = headers.get(b"authorization", b"").decode("latin-1")
                authenticate_officer(service, bearer, client_address(scope))
        except ApiError as exc:
            response = render_error(Request(scope), exc.status, exc.message)
            if exc.retry_after is not None:
                response.headers["Retry-After"] = str(exc.retry_after)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class CatchAll:
    """Answer an unexpected exception 500 and log one line: its kind, method and path.

    Starlette's own handler for ``Exception`` re-raises after answering, so the server would
    print a traceback (which may quote a request's values) and drop the keep-alive connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.error(
                "unexpected %s on %s %s",
                type(exc).__name__,
                scope["method"],
                loggable(scope["path"]),
            )
            if started:  # too late for a status: the server ends the connection
                return
            response = render_error(Request(scope), 500, "internal error")
            await response(scope, receive, send)


def render_error(request: Request, status: int, message: str) -> Response:
    """JSON ``{"detail": ...}``, or the Open311 error list on Open311 paths."""
    if request.url.path.startswith("/open311/"):
        from intake.open311_format import open311_error

        return open311_error(request, status, message)
    return JSONResponse({"detail": message}, status_code=status)


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    """How webhooks are delivered and SLA events found, from the settings."""
    return DeliveryPolicy(
        max_attempts=settings.webhook_max_attempts,
        lease_seconds=settings.webhook_lease_seconds,
        sla_sweep_seconds=settings.sla_sweep_seconds,
        sla_nearing_hours=settings.sla_nearing_hours,
        allow_private=settings.webhook_allow_private,
    )


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The service as uvicorn runs it: the report fast path (if on) in front of the API."""
    settings = settings or Settings()
    api = create_api(settings)
    if not settings.fast_path:
        return api
    return ReportFastPath(api, max_bytes=settings.max_body_bytes)


def create_api(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app: database (migrated), group-commit writer, kelurahan index, routes."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        migrate(engine)
        paths = resolve_data_dir(settings.data_dir)
        kelurahan = KelurahanIndex(load_kelurahan(paths.require(paths.kelurahan)))
        kelurahan.prepare()  # the first report must not wait for the lookup grid
        settings.media_dir.mkdir(parents=True, exist_ok=True)
        writer = GroupCommitWriter(
            engine,
            batch_max=settings.batch_max,
            idempotency_hours=settings.idempotency_hours,
            max_pending=settings.max_pending,
            crash_after_commits=settings.crash_after_commits,
        )
        hub = EventHub(engine, settings.events_poll_seconds)
        app.state.service = Service(
            settings=settings,
            engine=engine,
            writer=writer,
            kelurahan=kelurahan,
            recent_kpis=RecentResults(settings.kpi_cache_seconds),
            events=hub,
        )
        deliverer = Deliverer(engine, delivery_policy(settings))
        hub.start()
        if settings.webhook_deliveries:
            deliverer.start()
        try:
            yield
        finally:
            await hub.close()
            deliverer.close()
            app.state.service.photo_pool.shutdown()
            writer.close()
            engine.dispose()

    # /docs and /redoc with Swagger UI's and ReDoc's scripts served by the app: they work offline
    app = FastAPIOffline(
        title="jakarta-twin intake",
        version="1.0",
        description=(
            "Receives and tracks citizens' reports for Jakarta's 267 kelurahan: Open311 GeoReport v2 "
            "under /open311/v2 and a native JSON API under /api/v1. A 201 means the report is "
            f"committed. Idempotency keys are remembered {settings.idempotency_hours} hours."
        ),
        lifespan=lifespan,
        # no OpenTelemetry: it costs every request, and its logs would record rejected bodies
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )

    app.openapi = functools.partial(corrected_openapi, app)  # type: ignore[method-assign]

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        response = render_error(request, exc.status, exc.message)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        status, message = describe_validation(exc)
        return render_error(request, status, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        response = render_error(request, exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})  # a 405 names the allowed methods (Allow)
        return response

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> Response:
        # a value the database refuses (e.g. NUL on PostgreSQL) is the client's, and permanent
        log.warning("DataError on %s %s", request.method, loggable(request.url.path))
        return render_error(request, 422, UNUSABLE)

    from intake.routes import (
        events,
        export,
        forecast,
        health,
        kpis,
        media,
        officers,
        open311,
        open311_updates,
        ops,
        reports,
    )

    for module in (
        health,
        reports,
        officers,
        kpis,
        forecast,
        open311,
        open311_updates,
        media,
        export,
        events,
        ops,
    ):
        app.include_router(module.router)
    # the map pages' scripts and styles, Leaflet among them: no CDN, they work offline
    app.mount("/static", StaticFiles(directory=ops.STATIC), name="static")
    app.add_middleware(CredentialsFirst)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # type: ignore[arg-type]
    app.add_middleware(CatchAll)  # type: ignore[arg-type]
    return app
