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
    media_url: str | None = None
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


def report_public(row: Any, history: list[Any] | None = None) -> ReportPublic:
    """The public view of a stored report row."""
    from intake.store import as_utc

    return ReportPublic(
        id=str(row["id"]),
        token=row["token"],
        category=row["service_code"],
        description=row["description"],
        lat=row["lat"],
        lon=row["lon"],
        kelurahan_code=row["kelurahan_code"],
        channel=row["channel"],
        status=row["status"],
        open311_status="open" if row["status"] in OPEN_STATUSES else "closed",
        media_url=row["media_url"],
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


def officer_view(row: Any, history: list[Any] | None = None) -> OfficerReport:
    """The officers' view of a stored report row (still without the reporter's contact)."""
    return OfficerReport(**dict(report_public(row, history)), claimed_by=row["claimed_by"])
