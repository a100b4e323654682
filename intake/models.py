"""Request and response schemas, named by role (FastAPI template style)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from intake.errors import TEXT_PATTERN
from twin.entities import CATEGORIES, CHANNELS, OPEN_STATUSES

MAX_DESCRIPTION = 4000
MAX_ID = 2**31 - 1  # reports.id is a 32-bit INTEGER on PostgreSQL

EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"
URL_PATTERN = r"^https?://[^\s\x00-\x1f\x7f]+$"

ReportId = Annotated[int, Path(ge=1, le=MAX_ID, description="report id")]
TOKEN_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"  # uuid4
Token = Annotated[
    str, Path(pattern=TOKEN_PATTERN, description="the token of the report's POST answer")
]


class Reporter(BaseModel):
    """The reporter's contact: stored, never shown in public responses or logs."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200, pattern=TEXT_PATTERN)
    email: str | None = Field(default=None, max_length=320, pattern=EMAIL_PATTERN)
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()-]{5,40}$")


class ReportCreate(BaseModel):
    """A citizen's report. Status, kelurahan, ids and timestamps are set by the server: sending
    them is an error (extra fields are forbidden)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    category: str = Field(
        description="a service code from /open311/v2/services.json",
        max_length=40,
        json_schema_extra={"enum": list(CATEGORIES)},  # checked below, with a clearer message
    )
    # strict: a JSON string or boolean is not a number ("-6.13" and true are refused)
    lat: float = Field(ge=-90, le=90, strict=True, description="latitude, WGS84 degrees")
    lon: float = Field(ge=-180, le=180, strict=True, description="longitude, WGS84 degrees")
    description: str = Field(default="", max_length=MAX_DESCRIPTION, pattern=TEXT_PATTERN)
    channel: str | None = Field(
        default=None,
        description="reporting channel; default: the API key's",
        json_schema_extra={"enum": [*CHANNELS, None]},
    )
    media_url: str | None = Field(default=None, max_length=2000, pattern=URL_PATTERN)
    reporter: Reporter | None = None

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value not in CATEGORIES:
            msg = f"unknown category {value!r}; choose from {', '.join(CATEGORIES)}"
            raise ValueError(msg)
        return value

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str | None) -> str | None:
        if value is not None and value not in CHANNELS:
            msg = f"unknown channel {value!r}; choose from {', '.join(CHANNELS)}"
            raise ValueError(msg)
        return value


class StatusEvent(BaseModel):
    """One status change."""

    status: str
    at: datetime
    note: str | None = None


class ReportPublic(BaseModel):
    """A report as anyone may see it (no reporter contact)."""

    id: str
    token: str
    category: str
    description: str
    lat: float
    lon: float
    kelurahan_code: str
    channel: str
    status: str = Field(
        description="Jakarta status: menunggu, koordinasi, disposisi, proses, selesai"
    )
    open311_status: str = Field(description="open or closed")
    media_url: str | None = Field(
        default=None,
        description="the proof photo once resolved (served by this API), else the reporter's link",
    )
    crew: str | None = None
    agency: str | None = None
    created_at: datetime
    updated_at: datetime
    coordinated_at: datetime | None = None
    closed_at: datetime | None = None
    history: list[StatusEvent] | None = None


class ReportsPublic(BaseModel):
    """A page of reports."""

    data: list[ReportPublic]
    count: int


class OfficerReport(ReportPublic):
    """A report as the officers of its kelurahan see it: also who has claimed it."""

    claimed_by: int | None = Field(default=None, description="id of the officer working on it")


class OfficerReports(BaseModel):
    """A page of a kelurahan's reports, as its officers see them."""

    data: list[OfficerReport]
    count: int


class Message(BaseModel):
    """A one-line answer."""

    detail: str


COORDINATE_DECIMALS = 3  # public views: 0.001 degree, about 110 m in Jakarta (6 degrees south)
MEDIA_PATH = "/media"


def photo_url(public_url: str, photo_path: str | None) -> str | None:
    """The public URL of a stored proof photo (served by `intake.routes.media`), or None."""
    return None if photo_path is None else f"{public_url}{MEDIA_PATH}/{photo_path}"


def report_public(
    row: Any, history: list[Any] | None = None, *, public_url: str, exact: bool = True
) -> ReportPublic:
    """The public view of a stored report row.

    Parameters
    ----------
    row
        The stored report.
    history
        Its status changes, oldest first (None: not shown).
    public_url
        The service's public address (for the proof photo's URL).
    exact
        Exact coordinates (for the channel that sent it and for officers); False rounds them to
        `COORDINATE_DECIMALS` places, for anyone who tracks it by its token.
    """
    from intake.store import as_utc

    lat, lon = row["lat"], row["lon"]
    if not exact:
        lat, lon = round(lat, COORDINATE_DECIMALS), round(lon, COORDINATE_DECIMALS)
    return ReportPublic(
        id=str(row["id"]),
        token=row["token"],
        category=row["service_code"],
        description=row["description"],
        lat=lat,
        lon=lon,
        kelurahan_code=row["kelurahan_code"],
        channel=row["channel"],
        status=row["status"],
        open311_status="open" if row["status"] in OPEN_STATUSES else "closed",
        # the served proof photo once resolved, else the reporter's link (never fetched)
        media_url=photo_url(public_url, row["photo_path"]) or row["media_url"],
        crew=row["crew"],
        agency=row["agency"],
        created_at=as_utc(row["created_at"]),  # type: ignore[arg-type]
        updated_at=as_utc(row["updated_at"]),  # type: ignore[arg-type]
        coordinated_at=as_utc(row["coordinated_at"]),
        closed_at=as_utc(row["closed_at"]),
        history=None
        if history is None
        else [StatusEvent(status=h["status"], at=as_utc(h["at"]), note=h["note"]) for h in history],  # type: ignore[arg-type]
    )


def officer_view(row: Any, history: list[Any] | None = None, *, public_url: str) -> OfficerReport:
    """The officers' view of a stored report row (still without the reporter's contact)."""
    return OfficerReport(
        **dict(report_public(row, history, public_url=public_url)), claimed_by=row["claimed_by"]
    )
