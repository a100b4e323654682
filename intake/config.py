"""Settings of the intake service: one object, read once, from arguments or ``INTAKE_*`` variables."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from intake.ratelimit import DEFAULTS, parse_limit
from twin.city.datadir import work_root
from twin.kpis import MIN_RANKED_REPORTS


def _env(name: str, default: str) -> str:
    return os.environ.get(f"INTAKE_{name}", default)


def _seconds(name: str, default: str) -> float:
    """A duration from ``INTAKE_<name>``: a non-negative number, else one clear error."""
    raw = _env(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"INTAKE_{name}={raw!r}: expected a number of seconds >= 0")
    return value


def _count(name: str) -> int | None:
    """A positive whole number from ``INTAKE_<name>``, None when unset, else one clear error."""
    raw = _env(name, "")
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"INTAKE_{name}={raw!r}: expected a whole number >= 1")
    return int(raw)


def default_database_url() -> str:
    """SQLite under ``var/`` in the project (git-ignored)."""
    return _env("DATABASE_URL", f"sqlite:///{work_root() / 'var' / 'intake.db'}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service needs to know at start-up.

    Attributes
    ----------
    database_url
        SQLAlchemy URL: ``sqlite:///path.db`` (default, under ``var/``) or ``postgresql://...``.
    data_dir
        Jakarta data directory (for the kelurahan polygons); None: the twin's resolution order.
    media_dir
        Where proof photos are stored under server-chosen names.
    max_body_bytes
        Largest request body accepted (413 beyond).
    max_photo_bytes, max_photo_pixels
        Limits of a proof photo.
    max_photo_decode_bytes
        Most memory decoding one photo may take, estimated from its header before anything is
        allocated (`intake.photos.decode_bytes`; 413 beyond).
    photo_jobs
        Photos decoded at once (``INTAKE_PHOTO_JOBS``, default 2: one per core of the reference
        machine); further uploads wait for a slot, at most `photo_wait_seconds`
        (``INTAKE_PHOTO_WAIT_SECONDS``, default 60), then get 503 with ``Retry-After``. Peak memory of photo handling: about ``photo_jobs`` x 1.6 x
        `max_photo_decode_bytes`.
    max_description_chars
        Longest report description.
    batch_max
        Most reports committed in one grouped transaction.
    max_pending
        Most reports waiting for the group commit before new ones get 503 with ``Retry-After``
        (``INTAKE_MAX_PENDING``).
    idempotency_hours
        How long an idempotency key is remembered (published in the API docs).
    kpi_cache_seconds
        How long a KPI result (computed over every report) is reused before it is computed
        again (``INTAKE_KPI_CACHE_SECONDS``; 0: every request computes).
    ranking_min_reports
        Fewest reports a kelurahan needs to be ranked (``INTAKE_RANKING_MIN_REPORTS``; default
        the twin's: with fewer, its mean is noise).
    crash_after_commits
        Fault injection for the crash-oracle tests, never for production
        (``INTAKE_FAULT_CRASH_AFTER_COMMITS``): the process exits right after its Nth committed
        batch, before any of its reports is acknowledged: the hardest moment for idempotency.
    public_url
        The service's address as the public reaches it (``INTAKE_PUBLIC_URL``, default
        ``http://127.0.0.1:8000``): the Open311 discovery document and the URLs of proof photos
        are built from it, never from the request's Host header.
    credential_cache_size
        Most API keys and most officer tokens remembered (each for 30 s, least recently used
        dropped first); unknown ones are never remembered.
    rate_failed_auth, rate_reports_key, rate_reports_address
        Rate limits (`intake.ratelimit`): failed authentications per source address, new reports
        per channel key and per source address (``INTAKE_RATE_FAILED_AUTH``,
        ``INTAKE_RATE_REPORTS_KEY``, ``INTAKE_RATE_REPORTS_ADDRESS``; e.g. ``30/minute``, or
        ``off``).
    fast_path
        Answer ``POST /api/v1/reports`` in `intake.fastpath`, ahead of FastAPI's per-request
        machinery (same logic and answers; ``INTAKE_FAST_PATH=0`` turns it off).
    forecast_dir
        Where the scheduled `twin forecast` writes (``INTAKE_FORECAST_DIR``, default
        ``var/forecast``); ``/api/v1/forecast`` serves its ``forecast.json``.
    webhook_deliveries
        Deliver webhooks and look for SLA events in this process (``INTAKE_WEBHOOK_DELIVERIES=0``
        turns it off, e.g. for all but one of several servers; the outbox keeps every event).
    webhook_allow_private
        Let webhooks go to private and loopback addresses (``INTAKE_WEBHOOK_ALLOW_PRIVATE=1``:
        tests and closed networks only; otherwise refused, see `intake.webhooks`).
    webhook_max_attempts, webhook_lease_seconds
        Tries before a delivery is dead-lettered (``INTAKE_WEBHOOK_MAX_ATTEMPTS``, 8: about 4
        minutes of backoff) and how long a process holds a delivery it is posting
        (``INTAKE_WEBHOOK_LEASE_SECONDS``; after a crash, another try waits this long).
    sla_nearing_hours, sla_sweep_seconds
        ``report.sla_nearing`` after this long uncoordinated (``INTAKE_SLA_NEARING_SECONDS``,
        default 5 h), and how often SLA events are looked for (``INTAKE_SLA_SWEEP_SECONDS``).
    events_poll_seconds
        How often the event stream looks for new events in the outbox.
    """

    database_url: str = field(default_factory=default_database_url)
    data_dir: str | None = field(default_factory=lambda: os.environ.get("INTAKE_DATA_DIR"))
    media_dir: Path = field(
        default_factory=lambda: Path(_env("MEDIA_DIR", str(work_root() / "var" / "media")))
    )
    max_body_bytes: int = 12 * 1024 * 1024
    max_photo_bytes: int = 8 * 1024 * 1024
    max_photo_pixels: int = 40_000_000
    max_photo_decode_bytes: int = 96 * 2**20
    photo_jobs: int = field(default_factory=lambda: _count("PHOTO_JOBS") or 2)
    photo_wait_seconds: float = field(default_factory=lambda: _seconds("PHOTO_WAIT_SECONDS", "60"))
    max_description_chars: int = 4000
    batch_max: int = 256
    idempotency_hours: int = 24
    max_pending: int = field(default_factory=lambda: _count("MAX_PENDING") or 5000)
    kpi_cache_seconds: float = field(default_factory=lambda: _seconds("KPI_CACHE_SECONDS", "10"))
    ranking_min_reports: int = field(
        default_factory=lambda: _count("RANKING_MIN_REPORTS") or MIN_RANKED_REPORTS
    )
    crash_after_commits: int | None = field(
        default_factory=lambda: _count("FAULT_CRASH_AFTER_COMMITS")
    )
    public_url: str = field(default_factory=lambda: _env("PUBLIC_URL", "http://127.0.0.1:8000"))
    credential_cache_size: int = 10_000
    rate_failed_auth: str = field(
        default_factory=lambda: _env("RATE_FAILED_AUTH", DEFAULTS["failed_auth"])
    )
    rate_reports_key: str = field(
        default_factory=lambda: _env("RATE_REPORTS_KEY", DEFAULTS["reports_key"])
    )
    rate_reports_address: str = field(
        default_factory=lambda: _env("RATE_REPORTS_ADDRESS", DEFAULTS["reports_address"])
    )
    fast_path: bool = field(default_factory=lambda: _env("FAST_PATH", "1") != "0")
    forecast_dir: Path = field(
        default_factory=lambda: Path(_env("FORECAST_DIR", str(work_root() / "var" / "forecast")))
    )
    webhook_deliveries: bool = field(default_factory=lambda: _env("WEBHOOK_DELIVERIES", "1") != "0")
    webhook_allow_private: bool = field(
        default_factory=lambda: _env("WEBHOOK_ALLOW_PRIVATE", "0") == "1"
    )
    webhook_max_attempts: int = field(default_factory=lambda: _count("WEBHOOK_MAX_ATTEMPTS") or 8)
    webhook_lease_seconds: float = field(
        default_factory=lambda: _seconds("WEBHOOK_LEASE_SECONDS", "30")
    )
    sla_nearing_hours: float = field(
        default_factory=lambda: _seconds("SLA_NEARING_SECONDS", "18000") / 3600
    )
    sla_sweep_seconds: float = field(default_factory=lambda: _seconds("SLA_SWEEP_SECONDS", "30"))
    events_poll_seconds: float = 0.2

    def __post_init__(self) -> None:
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", self.public_url):
            raise ValueError(
                f"INTAKE_PUBLIC_URL={self.public_url!r}: expected an http(s) URL such as "
                "https://lapor.jakarta.go.id"
            )
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        for name in ("failed_auth", "reports_key", "reports_address"):
            parse_limit(name, getattr(self, f"rate_{name}"))
