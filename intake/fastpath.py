"""The hot path: ``POST /api/v1/reports`` answered ahead of FastAPI's per-request machinery.

On this 2-core machine a FastAPI request costs about 0.45 ms before any work of ours (routing,
dependency solving, middleware layers, response validation): more than a report's own work.
This ASGI layer sits in front of the whole FastAPI app and answers the one endpoint every
citizen hits, with the very same pieces the FastAPI route uses (`ReportCreate` validation,
`authenticate_key`, `accept_report`, `describe_errors`), so answers are identical; the route
stays the documented contract (OpenAPI) and the fallback (``INTAKE_FAST_PATH=0``). Every other
path, and the lifespan, go to FastAPI untouched.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from intake.deps import authenticate_key, client_address
from intake.errors import ApiError, describe_errors
from intake.models import ReportCreate, ReportPublic
from intake.routes import reports

PATH = "/api/v1/reports"
log = logging.getLogger(__name__)


class ReportFastPath:
    """The ASGI app uvicorn serves: ``POST /api/v1/reports`` here, the rest to FastAPI.

    Parameters
    ----------
    app
        The FastAPI app (everything else goes there; its lifespan builds the service).
    max_bytes
        Largest body accepted (413 beyond).
    """

    def __init__(self, app: FastAPI, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"].rstrip("/") != PATH
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        extra: list[tuple[bytes, bytes]] = []
        try:
            status, body = (
                201,
                (await self._accept(scope, headers, receive, extra)).model_dump_json().encode(),
            )
        except ApiError as exc:
            status, body = exc.status, json.dumps({"detail": exc.message}).encode()
            if exc.retry_after is not None:
                extra.append((b"retry-after", str(exc.retry_after).encode()))
        except Exception as exc:  # as FastAPI's own handler: logged without the body, then 500
            log.error("unexpected %s on POST %s", type(exc).__name__, PATH)
            status, body = 500, b'{"detail":"internal error"}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _accept(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        receive: Receive,
        extra: list[tuple[bytes, bytes]],
    ) -> ReportPublic:
        service = self.app.state.service
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise ApiError(413, f"request body over {self.max_bytes} bytes")
        address = client_address(scope)
        # credentials before the body: a client without them never makes the server read 12 MB
        api_key = authenticate_key(
            service, headers.get(b"x-api-key", b"").decode("latin-1"), address
        )
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type != b"application/json":
            raise ApiError(415, "Content-Type must be application/json")
        raw = await self._read_body(receive)
        try:
            body = ReportCreate.model_validate_json(raw)
        except ValidationError as exc:
            status, message = describe_errors(exc.errors())
            raise ApiError(status, message) from None
        idempotency = headers.get(b"idempotency-key")
        public, replayed = await reports.accept_report(
            service,
            body,
            api_key,
            None if idempotency is None else idempotency.decode("latin-1"),
            address=address,
        )
        extra.append((b"location", reports.location(public).encode()))
        if replayed:
            extra.append((b"idempotent-replayed", b"true"))
        return public

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ApiError(400, "the client closed the connection before sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise ApiError(413, f"request body over {self.max_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
