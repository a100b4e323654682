"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) under ``/open311/v2``.

Every endpoint answers in JSON or XML, chosen by the path's suffix (``services.json``,
``requests/12.xml``); any other suffix is a 404. Errors use the specification's error list with
HTTP 400, 403 or 404 (FastAPI's 422 becomes 400; other statuses such as 409 or 413 pass through).

Differences from the native API: ``POST requests`` takes form fields (``api_key`` among them) and
answers 400, not 422, for a point outside Jakarta; a report may be located by naming its
kelurahan in ``address_string`` instead of sending ``lat`` and ``long``. Listings carry two
extension fields, ``jakarta_status`` and ``kelurahan_code``, and never a reporter's contact.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from intake import store
from intake.deps import Service, ServiceDep, client_address
from intake.errors import ApiError
from intake.models import COORDINATE_DECIMALS, photo_url
from intake.open311_format import (
    MEDIA_TYPES,
    NOT_XML,
    check_format,
    date_window,
    iso,
    render,
)
from intake.routes.reports import check_idempotency_key, create_report, locate_or_422
from intake.search import MAX_ID, latest_notes, list_reports, status_histories
from twin.entities import CATEGORIES, OPEN_STATUSES, STATUSES

router = APIRouter(prefix="/open311/v2", tags=["open311"])

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-22T00:00:00+00:00"  # last change of this API's endpoints or services
MAX_IDS = 1000
EXTENSIONS = "true: each request also carries notes, its update history"

GROUPS = {
    "public_order": "Ketertiban umum",
    "illegal_parking": "Ketertiban umum",
    "regulation_violation": "Ketertiban umum",
    "street_vendors": "Ketertiban umum",
    "garbage": "Kebersihan dan lingkungan",
    "trees": "Kebersihan dan lingkungan",
    "drainage": "Kebersihan dan lingkungan",
    "flood": "Kebersihan dan lingkungan",
    "roads": "Prasarana",
    "street_lights": "Prasarana",
}

# POST requests: form fields read, with their longest accepted length
FIELD_LIMITS = {
    "api_key": 200,
    "service_code": 40,
    "lat": 40,
    "long": 40,
    "address_string": 500,
    "email": 320,
    "first_name": 100,
    "last_name": 100,
    "phone": 40,
    "device_id": 200,
    "account_id": 200,
    "media_url": 2000,
}
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
PHONE = re.compile(r"\+?[0-9 ()-]{5,40}")
URL = re.compile(r"https?://\S+")
REQUEST_ID = re.compile(r"[0-9]{1,10}")
STATUS_LIST = r"^(open|closed)(,(open|closed))*$"
TOKEN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # uuid4
# what `_field` and `post_request` enforce, as JSON Schema (kept next to the checks it describes)
XML_TEXT = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\ud800-\\udfff\\ufffe\\uffff]*$"  # = NOT_XML
FORM_RULES: dict[str, dict[str, Any]] = {
    "service_code": {"enum": list(CATEGORIES)},
    "lat": {"type": "number", "minimum": -90, "maximum": 90},
    "long": {"type": "number", "minimum": -180, "maximum": 180},
    "email": {"pattern": "^[^@\\s\\x00-\\x1f]+@[^@\\s\\x00-\\x1f]+$"},
    "phone": {"pattern": "^\\+?[0-9 ()-]{5,40}$"},
    "media_url": {"pattern": "^https?://[^\\s\\x00-\\x1f]+$"},
}


def _form_schema(max_description: int) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, limit in [*FIELD_LIMITS.items(), ("description", max_description)]:
        rule = FORM_RULES.get(name, {})
        if rule.get("type") == "number":
            properties[name] = rule
        else:
            properties[name] = {"type": "string", "maxLength": limit, "pattern": XML_TEXT, **rule}
    return {
        "type": "object",
        "required": ["api_key", "service_code"],
        "properties": properties,
        # a location: lat and long together, or a kelurahan named in address_string
        "dependentRequired": {"lat": ["long"], "long": ["lat"]},
        "anyOf": [{"required": ["lat", "long"]}, {"required": ["address_string"]}],
    }


POST_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": _form_schema(4000)}
            for media in ("application/x-www-form-urlencoded", "multipart/form-data")
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid request (Open311 error list)"},
    403: {"description": "missing or invalid api_key"},
    404: {"description": "unknown format, service, request or token"},
}


# --- helpers ---------------------------------------------------------------------------------


def kelurahan_names(service: Service) -> dict[str, str]:
    """Kemendagri code to kelurahan name."""
    table = service.kelurahan.table
    return dict(zip(table["kode_kemendagri"], table["kelurahan"].astype(str), strict=True))


def locate_address(service: Service, address: str) -> tuple[str, float, float]:
    """The kelurahan named in `address` and its label point (code, lat, lon).

    The name must appear as whole words, case-insensitively; when several names appear, the
    longest wins ("Cempaka Putih Timur" over "Cempaka Putih").

    Raises
    ------
    ApiError
        400 when no kelurahan, or several of the same length, are named.
    """
    table = service.kelurahan.table
    if "label_lat" in table.columns and "label_lon" in table.columns:
        lats, lons = table["label_lat"], table["label_lon"]
    else:  # a boundary file without label points: a point surely inside each polygon
        points = table.geometry.representative_point()
        lats, lons = points.y, points.x
    text = " ".join(address.split()).casefold()
    found: list[tuple[str, str, float, float]] = []
    for code, name, lat, lon in zip(
        table["kode_kemendagri"], table["kelurahan"].astype(str), lats, lons, strict=True
    ):
        needle = " ".join(name.split()).casefold()
        if needle and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", text):
            found.append((name, str(code), float(lat), float(lon)))
    if not found:
        raise ApiError(
            400,
            "address_string could not be located: send lat and long, or name the kelurahan",
        )
    longest = max(len(name) for name, *_ in found)
    best = [f for f in found if len(f[0]) == longest]
    if len(best) > 1:
        names = ", ".join(sorted(f[0] for f in best))
        raise ApiError(400, f"address_string names several kelurahan ({names}): send lat and long")
    _, code, lat, lon = best[0]
    return code, lat, lon


def _field(form: FormData, name: str, max_chars: int) -> str | None:
    """One text field, stripped; None when absent or blank (400 if repeated, a file or long)."""
    values = form.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(400, f"{name} was given more than once")
    value = values[0]
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a text field, not a file")
    value = value.strip()
    if len(value) > max_chars:
        raise ApiError(400, f"{name} is longer than {max_chars} characters")
    if NOT_XML.search(value):
        raise ApiError(400, f"{name} contains control characters")
    return value or None


def _coordinate(name: str, text: str, limit: float) -> float:
    """A latitude or longitude: a finite decimal number within ``[-limit, limit]`` (400)."""
    if not NUMBER.fullmatch(text):
        raise ApiError(400, f"{name} must be a decimal number of degrees, got {text[:40]!r}")
    value = float(text)
    if not math.isfinite(value) or abs(value) > limit:
        raise ApiError(400, f"{name} must lie within [-{limit:g}, {limit:g}] degrees")
    return value


def _split(text: str | None) -> list[str] | None:
    """Comma-separated values; None when absent or blank."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    return parts or None


def request_item(
    row: Any, note: str | None, names: dict[str, str], public_url: str
) -> dict[str, Any]:
    """One stored report as an Open311 service request (public fields only, coordinates rounded
    to `COORDINATE_DECIMALS` places; ``media_url`` the proof photo once resolved)."""
    code = row["service_code"]
    kelurahan = row["kelurahan_code"]
    return {
        "service_request_id": str(row["id"]),
        "status": "open" if row["status"] in OPEN_STATUSES else "closed",
        "status_notes": note,
        "service_name": CATEGORIES[code][0] if code in CATEGORIES else code,
        "service_code": code,
        "description": row["description"],
        "agency_responsible": row["agency"] or f"Kelurahan {names.get(kelurahan, kelurahan)}",
        "service_notice": None,
        "requested_datetime": iso(row["created_at"]),
        "updated_datetime": iso(row["updated_at"]),
        "expected_datetime": None,
        "address": row["address_string"],
        "address_id": None,
        "zipcode": None,
        "lat": round(row["lat"], COORDINATE_DECIMALS),
        "long": round(row["lon"], COORDINATE_DECIMALS),
        "media_url": photo_url(public_url, row["photo_path"]) or row["media_url"],
        "jakarta_status": str(row["status"]).capitalize(),
        "kelurahan_code": kelurahan,
    }


def _requests_response(
    service: Service, fmt: str, rows: list[Any], *, extensions: bool = False
) -> Response:
    """Listed rows as service requests, with their latest status notes.

    With `extensions`, each request also carries ``notes``: its whole update history (the
    Open311 update-history extension, as Chicago's endpoint answers ``extensions=true``).
    """
    ids = [row["id"] for row in rows]
    with service.engine.connect() as conn:
        notes = latest_notes(conn, report_ids=ids)
        histories = status_histories(conn, report_ids=ids) if extensions else {}
    names = kelurahan_names(service)
    public_url = service.settings.public_url
    items = [request_item(row, notes.get(row["id"]), names, public_url) for row in rows]
    if extensions:
        for item, row in zip(items, rows, strict=True):
            item["notes"] = history_notes(histories.get(row["id"], []), row, public_url)
    return render(fmt, "service_requests", items)


def history_notes(changes: list[Any], row: Any, public_url: str) -> list[dict[str, Any]]:
    """A report's status changes as Open311 ``notes``: ``opened``, ``activity``, ``closed``."""
    notes = []
    for i, change in enumerate(changes):
        closed = change["status"] not in OPEN_STATUSES
        kind = "opened" if i == 0 else "closed" if closed else "activity"
        notes.append(
            {
                "datetime": iso(change["at"]),
                "type": kind,
                "summary": f"Request {kind}" if kind != "activity" else change["status"].title(),
                "description": change["note"],
                "jakarta_status": str(change["status"]).capitalize(),
                "media_url": photo_url(public_url, row["photo_path"]) if closed else None,
            }
        )
    return notes


# --- endpoints -------------------------------------------------------------------------------


@router.get("/discovery.{fmt}", responses={404: ERRORS[404]})
def discovery(fmt: str, service: ServiceDep) -> Response:
    """Where the endpoints are and which formats they speak (``INTAKE_PUBLIC_URL``)."""
    fmt = check_format(fmt)
    url = service.settings.public_url + router.prefix  # configured: never the Host header
    return render(
        fmt,
        "discovery",
        {
            "changeset": CHANGESET,
            "contact": "Operators of the jakarta-twin intake service for DKI Jakarta",
            "key_service": "API keys are issued per reporting channel by the operators "
            "(twin keys add --channel open311)",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": url,
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": [MEDIA_TYPES["xml"], MEDIA_TYPES["json"]],
                }
            ],
        },
    )


@router.get("/services.{fmt}", responses={404: ERRORS[404]})
def services(fmt: str) -> Response:
    """The service codes: Jakarta's report categories."""
    fmt = check_format(fmt)
    items = [
        {
            "service_code": code,
            "service_name": name_id,
            "description": name_en,
            "metadata": False,
            "type": "realtime",
            "keywords": f"{name_id.lower()}, {name_en.lower()}",
            "group": GROUPS.get(code, "Lainnya"),
        }
        for code, (name_id, name_en) in CATEGORIES.items()
    ]
    return render(fmt, "services", items)


@router.get("/services/{service_code}.{fmt}", responses={404: ERRORS[404]})
def service_definition(service_code: str, fmt: str) -> Response:
    """A service's extra attributes: none, every service takes only the standard fields."""
    fmt = check_format(fmt)
    if service_code not in CATEGORIES:
        raise ApiError(404, f"unknown service_code {service_code[:40]!r}")
    return render(fmt, "service_definition", {"service_code": service_code, "attributes": []})


@router.post(
    "/requests.{fmt}",
    status_code=201,
    openapi_extra=POST_FORM,
    responses={
        **ERRORS,
        409: {"description": "same Idempotency-Key in flight"},
        429: {"description": "rate limit: retry after Retry-After"},
        503: {"description": "overloaded or not stored: retry after Retry-After"},
    },
)
async def post_request(fmt: str, request: Request, service: ServiceDep) -> Response:
    """Receive a report as form fields; 201 means it is committed to durable storage.

    Locate it by ``lat`` and ``long``, or by naming its kelurahan in ``address_string``.
    ``Idempotency-Key`` works as in the native API.
    """
    fmt = check_format(fmt)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise ApiError(
            400, "send the fields as application/x-www-form-urlencoded or multipart/form-data"
        )
    source = client_address(request.scope)
    service.limits.check_address(source)  # before the body: a blocked address is not read
    async with request.form() as form:
        fields = {name: _field(form, name, limit) for name, limit in FIELD_LIMITS.items()}
        description = _field(form, "description", service.settings.max_description_chars)
    if fields["api_key"] is None:
        service.limits.failed(source)
        raise ApiError(403, "api_key is required: send a channel API key as a form field")
    api_key = await run_in_threadpool(service.api_key, fields["api_key"])
    if api_key is None:
        service.limits.failed(source)
        raise ApiError(403, "invalid or revoked api_key")
    key = check_idempotency_key(request.headers.get("idempotency-key"))
    service.limits.report(api_key["id"], source)

    code = fields["service_code"]
    if code is None:
        raise ApiError(400, "service_code is required: see services.json")
    if code not in CATEGORIES:
        raise ApiError(400, f"unknown service_code {code!r}: choose from {', '.join(CATEGORIES)}")
    email, phone, media_url = fields["email"], fields["phone"], fields["media_url"]
    if email is not None and not EMAIL.fullmatch(email):
        raise ApiError(400, "email is not an email address")
    if phone is not None and not PHONE.fullmatch(phone):
        raise ApiError(400, "phone may hold only digits, spaces, ( ) - and a leading +")
    if media_url is not None and not URL.fullmatch(media_url):
        raise ApiError(400, "media_url must be an http or https URL")

    lat_text, lon_text, address = fields["lat"], fields["long"], fields["address_string"]
    if (lat_text is None) != (lon_text is None):
        raise ApiError(400, "send both lat and long, or neither (and name the kelurahan)")
    if lat_text is not None and lon_text is not None:
        lat = _coordinate("lat", lat_text, 90)
        lon = _coordinate("long", lon_text, 180)
        try:
            kelurahan = locate_or_422(service, lat=lat, lon=lon)
        except ApiError as exc:
            raise ApiError(400, exc.message) from None
    elif address is not None:
        kelurahan, lat, lon = locate_address(service, address)
    else:
        raise ApiError(400, "a location is required: send lat and long, or address_string")

    normalised = {**fields, "api_key": None, "lat": lat, "long": lon, "description": description}
    body_hash = hashlib.sha256(json.dumps(normalised, sort_keys=True).encode()).hexdigest()
    names = [n for n in (fields["first_name"], fields["last_name"]) if n]
    values = {
        "service_code": code,
        "description": description or "",
        "lat": lat,
        "lon": lon,
        "address_string": address,
        "kelurahan_code": kelurahan,
        "channel": api_key["channel"],
        "media_url": media_url,
        "reporter_name": " ".join(names) or None,
        "reporter_email": email,
        "reporter_phone": phone,
        "device_id": fields["device_id"],
    }
    row, replayed = await create_report(
        service, values=values, api_key_id=api_key["id"], idempotency_key=key, body_hash=body_hash
    )
    name = kelurahan_names(service).get(row["kelurahan_code"], row["kelurahan_code"])
    item = {
        "service_request_id": str(row["id"]),
        "token": row["token"],
        "service_notice": f"Received; kelurahan {name} ({row['kelurahan_code']}) will handle it",
        "account_id": fields["account_id"],
    }
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return render(fmt, "service_requests", [item], status=201, headers=headers)


@router.get("/requests.{fmt}", responses={400: ERRORS[400], 404: ERRORS[404]})
def get_requests(
    fmt: str,
    service: ServiceDep,
    service_request_id: Annotated[
        str | None, Query(description="comma-separated ids; overrides the other filters")
    ] = None,
    service_code: Annotated[str | None, Query(description="comma-separated codes")] = None,
    start_date: Annotated[str | None, Query(description="ISO 8601 with timezone")] = None,
    end_date: Annotated[
        str | None, Query(description="ISO 8601 with timezone; at most 90 days after start_date")
    ] = None,
    status: Annotated[
        str | None, Query(description="open, closed or both, comma-separated", pattern=STATUS_LIST)
    ] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    extensions: Annotated[bool, Query(description=EXTENSIONS)] = False,
) -> Response:
    """Service requests, newest first: by default those of the last 90 days."""
    fmt = check_format(fmt)
    ids = _split(service_request_id)
    if ids is not None:
        if len(ids) > MAX_IDS or not all(REQUEST_ID.fullmatch(i) for i in ids):
            raise ApiError(
                400, f"service_request_id must be up to {MAX_IDS} comma-separated numeric ids"
            )
        with service.engine.connect() as conn:
            rows = list_reports(conn, ids=[int(i) for i in ids], limit=len(ids))
        return _requests_response(service, fmt, rows, extensions=extensions)

    codes = _split(service_code)
    unknown = [c for c in codes or () if c not in CATEGORIES]
    if unknown:
        raise ApiError(400, f"unknown service_code {unknown[0][:40]!r}: see services.json")
    statuses: list[str] | None = None
    wanted = _split(status)
    if wanted is not None:
        if not set(wanted) <= {"open", "closed"}:
            raise ApiError(400, "status must be open, closed, or both comma-separated")
        statuses = [s for s in STATUSES if ("open" if s in OPEN_STATUSES else "closed") in wanted]
    start, end = date_window(start_date, end_date)
    with service.engine.connect() as conn:
        rows = list_reports(
            conn,
            service_codes=codes,
            statuses=statuses,
            start=start,
            end=end,
            limit=page_size,
            offset=(page - 1) * page_size,
        )
    return _requests_response(service, fmt, rows, extensions=extensions)


@router.get("/requests/{request_id}.{fmt}", responses={404: ERRORS[404]})
def get_request(
    request_id: str,
    fmt: str,
    service: ServiceDep,
    extensions: Annotated[bool, Query(description=EXTENSIONS)] = False,
) -> Response:
    """One service request, as a list of one."""
    fmt = check_format(fmt)
    if not REQUEST_ID.fullmatch(request_id) or int(request_id) > MAX_ID:
        raise ApiError(404, f"no service request {request_id[:40]!r}")
    with service.engine.connect() as conn:
        rows = list_reports(conn, ids=[int(request_id)], limit=1)
    if not rows:
        raise ApiError(404, f"no service request {request_id}")
    return _requests_response(service, fmt, rows, extensions=extensions)


@router.get("/tokens/{token}.{fmt}", responses={404: ERRORS[404]})
def get_token(token: str, fmt: str, service: ServiceDep) -> Response:
    """The service request id of a token returned by ``POST requests``."""
    fmt = check_format(fmt)
    row = None
    if TOKEN.fullmatch(token):
        with service.engine.connect() as conn:
            row = store.get_report_by_token(conn, token=token)
    if row is None:
        raise ApiError(404, f"no service request with token {token[:40]!r}")
    return render(
        fmt, "service_requests", [{"service_request_id": str(row["id"]), "token": row["token"]}]
    )
