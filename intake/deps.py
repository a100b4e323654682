"""Dependencies: the service state, the database, channel API keys and officer tokens."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.engine import Engine

from intake import store
from intake.cache import RecentResults
from intake.config import Settings
from intake.errors import ApiError
from intake.writer import GroupCommitWriter
from twin.city.kelurahan import KelurahanIndex

CACHE_SECONDS = 30.0  # a revoked key or officer is refused within this long


@dataclass(slots=True)
class Service:
    """What every request needs, built once at start-up.

    Attributes
    ----------
    settings
        The configuration.
    engine
        The database engine.
    writer
        The group-commit writer for new reports.
    kelurahan
        Point-in-kelurahan index for routing.
    recent_kpis
        KPI results reused for ``settings.kpi_cache_seconds``.
    inflight
        Idempotency keys whose first request is still being committed.
    photo_slots
        One per photo that may be decoded at once (``settings.photo_jobs``).
    photo_pool
        The threads photos are decoded in, as many as slots: a large buffer freed by one of
        many threads would stay in that thread's malloc arena, and memory would grow with the
        number of request threads (40), not with the number of photos at once.
    """

    settings: Settings
    engine: Engine
    writer: GroupCommitWriter
    kelurahan: KelurahanIndex
    recent_kpis: RecentResults
    inflight: set[tuple[int, str]] = field(default_factory=set)
    photo_slots: threading.BoundedSemaphore = field(init=False)
    photo_pool: ThreadPoolExecutor = field(init=False)
    _keys: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _officers: dict[str, tuple[float, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.photo_slots = threading.BoundedSemaphore(self.settings.photo_jobs)
        self.photo_pool = ThreadPoolExecutor(self.settings.photo_jobs, thread_name_prefix="photo")

    def api_key(self, secret: str) -> Any:
        """The active key row for `secret` (cached briefly), or None."""
        hit = self._keys.get(secret)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        with self.engine.connect() as conn:
            row = store.find_api_key(conn, secret=secret)
        self._keys[secret] = (time.monotonic(), row)
        return row

    def officer(self, token: str) -> Any:
        """The officer row for `token` (cached briefly), or None."""
        hit = self._officers.get(token)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        with self.engine.connect() as conn:
            row = store.find_officer(conn, token=token)
        self._officers[token] = (time.monotonic(), row)
        return row


async def get_service(request: Request) -> Service:
    """The service built at start-up."""
    return request.app.state.service  # type: ignore[no-any-return]


ServiceDep = Annotated[Service, Depends(get_service)]


def authenticate_key(service: Service, secret: str | None) -> Any:
    """The active key row for `secret`, or `ApiError` 401 naming what is wrong."""
    if not secret:
        raise ApiError(401, "missing X-API-Key header: a channel API key is required")
    row = service.api_key(secret)
    if row is None:
        raise ApiError(401, "invalid or revoked API key")
    return row


async def require_api_key(
    service: ServiceDep, x_api_key: Annotated[str | None, Header()] = None
) -> Any:
    """A channel's API key from ``X-API-Key`` (401 when missing or unknown).

    Async on purpose: FastAPI would run a plain function in a thread pool on every request,
    and the key is almost always in the cache.
    """
    return authenticate_key(service, x_api_key)


ApiKeyDep = Annotated[Any, Depends(require_api_key)]


def require_officer(
    service: ServiceDep, authorization: Annotated[str | None, Header()] = None
) -> Any:
    """An active officer from ``Authorization: Bearer <token>`` (401 missing/unknown, 403 inactive)."""
    if not authorization or not authorization.startswith("Bearer "):
        raise ApiError(401, "missing 'Authorization: Bearer <officer token>' header")
    row = service.officer(authorization.removeprefix("Bearer ").strip())
    if row is None:
        raise ApiError(401, "invalid officer token")
    if not row["active"]:
        raise ApiError(403, "this officer has been deactivated")
    return row


OfficerDep = Annotated[Any, Depends(require_officer)]


def require_coordinator(officer: OfficerDep) -> Any:
    """An officer with the coordinator role (403 otherwise)."""
    if officer["role"] != "coordinator":
        raise ApiError(403, "this action needs a coordinator of the kelurahan")
    return officer


CoordinatorDep = Annotated[Any, Depends(require_coordinator)]
