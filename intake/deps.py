"""Dependencies: the service state, the database, channel API keys and officer tokens."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

from cachetools import TTLCache
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from starlette.types import Scope

from intake import store
from intake.cache import RecentResults
from intake.config import Settings
from intake.errors import ApiError
from intake.events import EventHub
from intake.ratelimit import RateLimits
from intake.writer import GroupCommitWriter
from twin.city.kelurahan import KelurahanIndex

CACHE_SECONDS = 30.0  # a revoked key or officer is refused within this long
API_KEY = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ChannelKey",
    description="a reporting channel's API key (issued by the operators: twin keys add)",
)
OFFICER_TOKEN = HTTPBearer(
    auto_error=False,
    scheme_name="OfficerToken",
    description="a kelurahan officer's bearer token (issued by the operators: twin officers add)",
)


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
    events
        The event stream's hub (`intake.events`), once the server runs.
    limits
        The rate limits (`intake.ratelimit`).
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
    events: EventHub | None = None
    limits: RateLimits = field(init=False)
    photo_slots: threading.BoundedSemaphore = field(init=False)
    photo_pool: ThreadPoolExecutor = field(init=False)
    # known keys and tokens, bounded (LRU within a TTL): unknown ones are never remembered, so
    # random credentials cannot grow the memory (40,000 random keys took 9 MB, never released)
    _keys: TTLCache[str, Any] = field(init=False)
    _officers: TTLCache[str, Any] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        settings = self.settings
        self.limits = RateLimits(
            failed_auth=settings.rate_failed_auth,
            reports_key=settings.rate_reports_key,
            reports_address=settings.rate_reports_address,
        )
        self.photo_slots = threading.BoundedSemaphore(settings.photo_jobs)
        self.photo_pool = ThreadPoolExecutor(settings.photo_jobs, thread_name_prefix="photo")
        self._keys = TTLCache(settings.credential_cache_size, CACHE_SECONDS)
        self._officers = TTLCache(settings.credential_cache_size, CACHE_SECONDS)

    def api_key(self, secret: str) -> Any:
        """The active key row for `secret` (cached briefly), or None."""
        return self._cached(self._keys, secret, store.find_api_key, "secret")

    def officer(self, token: str) -> Any:
        """The officer row for `token` (cached briefly), or None."""
        return self._cached(self._officers, token, store.find_officer, "token")

    def _cached(self, cache: TTLCache[str, Any], secret: str, find: Any, arg: str) -> Any:
        with self._lock:
            row = cache.get(secret)
        if row is not None:
            return row
        with self.engine.connect() as conn:
            row = find(conn, **{arg: secret})
        if row is not None:
            with self._lock:
                cache[secret] = row
        return row


async def get_service(request: Request) -> Service:
    """The service built at start-up."""
    return request.app.state.service  # type: ignore[no-any-return]


ServiceDep = Annotated[Service, Depends(get_service)]


def client_address(scope: Scope) -> str:
    """The request's source address (as the server saw it)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def authenticate_key(service: Service, secret: str | None, address: str) -> Any:
    """The active key row for `secret`, or `ApiError` 401 naming what is wrong (429 when this
    address has failed too often)."""
    service.limits.check_address(address)
    if not secret:
        service.limits.failed(address)
        raise ApiError(401, "missing X-API-Key header: a channel API key is required")
    row = service.api_key(secret)
    if row is None:
        service.limits.failed(address)
        raise ApiError(401, "invalid or revoked API key")
    return row


def authenticate_officer(service: Service, authorization: str | None, address: str) -> Any:
    """The officer of ``Authorization: Bearer <token>`` (401 missing/unknown, 403 inactive,
    429 when this address has failed too often)."""
    service.limits.check_address(address)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        service.limits.failed(address)
        raise ApiError(401, "missing 'Authorization: Bearer <officer token>' header")
    row = service.officer(token.strip())
    if row is None:
        service.limits.failed(address)
        raise ApiError(401, "invalid officer token")
    if not row["active"]:
        raise ApiError(403, "this officer has been deactivated")
    return row


async def require_api_key(
    request: Request, service: ServiceDep, x_api_key: Annotated[str | None, Security(API_KEY)]
) -> Any:
    """A channel's API key from ``X-API-Key`` (401 when missing or unknown).

    Async on purpose: FastAPI would run a plain function in a thread pool on every request,
    and the key is almost always in the cache.
    """
    return authenticate_key(service, x_api_key, client_address(request.scope))


ApiKeyDep = Annotated[Any, Depends(require_api_key)]


def require_officer(
    request: Request,
    service: ServiceDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(OFFICER_TOKEN)],
) -> Any:
    """An active officer from ``Authorization: Bearer <token>`` (401 missing/unknown, 403 inactive)."""
    authorization = request.headers.get("authorization")
    return authenticate_officer(service, authorization, client_address(request.scope))


OfficerDep = Annotated[Any, Depends(require_officer)]


def require_coordinator(officer: OfficerDep) -> Any:
    """An officer with the coordinator role (403 otherwise)."""
    if officer["role"] != "coordinator":
        raise ApiError(403, "this action needs a coordinator of the kelurahan")
    return officer


CoordinatorDep = Annotated[Any, Depends(require_coordinator)]


ADMIN_ROLE = "admin"  # the city's control room: every kelurahan
ALL_KELURAHAN = "*"  # the kelurahan code stored for an administrator


def officer_scope(officer: Any) -> str | None:
    """The kelurahan an officer or coordinator sees; None for an administrator (all)."""
    return None if officer["role"] == ADMIN_ROLE else str(officer["kelurahan_code"])


def require_admin(officer: OfficerDep) -> Any:
    """An officer with the administrator role (403 otherwise)."""
    if officer["role"] != ADMIN_ROLE:
        raise ApiError(403, "this needs an administrator's token")
    return officer


AdminDep = Annotated[Any, Depends(require_admin)]
