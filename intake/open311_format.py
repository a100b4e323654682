"""Open311 GeoReport v2's wire format: JSON or XML by the path's suffix, the specification's
error list, and the date windows its listings take. Shared by the Open311 routes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from intake import store
from intake.errors import ApiError

MEDIA_TYPES = {"json": "application/json", "xml": "text/xml"}
MAX_WINDOW = timedelta(days=90)

# XML: the element of each item of a list, by the list's element
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "notes": "note",
    "service_request_updates": "request_update",
}
# characters XML 1.0 cannot carry at all, escaped or not
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# a '+' of a UTC offset arrives as a space when the client did not percent-encode it
UNENCODED_PLUS = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def check_format(fmt: str) -> str:
    """The format of a path suffix: ``json`` or ``xml`` (404 otherwise)."""
    if fmt not in MEDIA_TYPES:
        raise ApiError(404, f"unknown format {fmt[:20]!r}: use .json or .xml")
    return fmt


def _fill(element: ET.Element, value: Any) -> None:
    """Append `value` to `element`: children for dicts and lists, text for scalars."""
    if value is None:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), item)
    elif isinstance(value, list):
        tag = ITEM_TAGS.get(element.tag, "item")
        for item in value:
            _fill(ET.SubElement(element, tag), item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = NOT_XML.sub("\ufffd", str(value))


def to_xml(root: str, value: Any) -> bytes:
    """Serialise `value` (dicts, lists, scalars) under a `root` element, escaped by ElementTree.

    Parameters
    ----------
    root
        The root element, e.g. ``service_requests``.
    value
        A dict (one child element per key) or a list (one item element per entry, named by
        `ITEM_TAGS`); None becomes an empty element, booleans ``true``/``false``.

    Returns
    -------
    document
        UTF-8 XML with its declaration.
    """
    element = ET.Element(root)
    _fill(element, value)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def render(
    fmt: str, root: str, value: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """`value` as JSON, or as XML under the `root` element."""
    if fmt == "xml":
        return Response(
            to_xml(root, value), status_code=status, media_type="text/xml", headers=headers
        )
    return JSONResponse(value, status_code=status, headers=headers)


def open311_error(request: Request, status: int, message: str) -> Response:
    """The specification's error list, in XML for a ``.xml`` path and JSON otherwise.

    Parameters
    ----------
    request
        The failed request (its path picks the format).
    status
        HTTP status; 422 (FastAPI's validation) is answered 400, as Open311 knows no 422.
    message
        What is wrong.

    Returns
    -------
    response
        ``[{"code": ..., "description": ...}]`` or ``<errors><error>...</error></errors>``.
    """
    status = 400 if status == 422 else status
    fmt = "xml" if request.url.path.endswith(".xml") else "json"
    return render(fmt, "errors", [{"code": status, "description": message}], status=status)


def parse_datetime(name: str, text: str) -> datetime:
    """An ISO 8601 datetime with a timezone, in UTC (400 when malformed or without zone)."""
    value = UNENCODED_PLUS.sub(r"\1+\2", text.strip()[:64])
    example = "e.g. 2026-01-31T08:00:00+07:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            400, f"{name} must be an ISO 8601 datetime with a timezone ({example}), got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        raise ApiError(400, f"{name} needs a timezone ({example}), got {value!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ApiError(400, f"{name} is out of range") from None


def date_window(start_date: str | None, end_date: str | None) -> tuple[datetime, datetime]:
    """The requested window, at most 90 days; by default the last 90 days (400 if invalid)."""
    start = parse_datetime("start_date", start_date) if start_date else None
    end = parse_datetime("end_date", end_date) if end_date else None
    try:
        if start is None:
            end = end or store.now_utc()
            start = end - MAX_WINDOW
        elif end is None:
            end = start + MAX_WINDOW
    except OverflowError:
        raise ApiError(400, "start_date or end_date is out of range") from None
    if end < start:
        raise ApiError(400, "end_date is before start_date")
    if end - start > MAX_WINDOW:
        raise ApiError(400, "start_date and end_date may be at most 90 days apart")
    return start, end


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with its offset, or None."""
    at = store.as_utc(value)
    return None if at is None else at.isoformat()
