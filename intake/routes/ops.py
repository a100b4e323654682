"""The operations centre: ``/ops`` (officers, coordinators, administrators) and ``/map`` (public).

The pages are static files (`intake/static`) with the vendored Leaflet; their data comes from
the endpoints below and their updates from the event stream. ``/ops`` data needs a Bearer token
and is scoped like every officer endpoint (an administrator sees every kelurahan); ``/map`` data
is public: coordinates rounded to `COORDINATE_DECIMALS` places, no description, no contact.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy.engine import Connection

from intake import store
from intake.db import reports
from intake.deps import OfficerDep, ServiceDep, officer_scope
from intake.errors import ApiError
from intake.models import COORDINATE_DECIMALS, MEDIA_PATH, ReportId, officer_view

STATIC = Path(__file__).resolve().parent.parent / "static"
RECENTLY_CLOSED = timedelta(hours=24)  # done reports stay on the map (green) this long
SIMPLIFY_DEGREES = 0.0001  # boundary outlines to about 10 m: a lighter page, the same map
COLUMNS = ["id", "lat", "lon", "status", "category", "kelurahan_code", "created", "coordinated"]

router = APIRouter(tags=["operations centre"])

AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid officer token"},
    403: {"description": "deactivated officer"},
}
ROWS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "``columns`` and ``rows`` (one array per report), ``scope``, ``now``",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.get("/ops", include_in_schema=False)
def ops_page() -> FileResponse:
    """The live operations map (it asks for an officer's token)."""
    return FileResponse(STATIC / "ops.html", headers={"Cache-Control": "no-cache"})


@router.get("/map", include_in_schema=False)
def public_page() -> FileResponse:
    """The public map of reports."""
    return FileResponse(STATIC / "map.html", headers={"Cache-Control": "no-cache"})


@router.get(
    "/api/v1/ops/kelurahan.geojson",
    response_class=Response,
    responses={
        200: {
            "description": "a GeoJSON FeatureCollection",
            "content": {"application/geo+json": {"schema": {"type": "object"}}},
        }
    },
)
def boundaries(request: Request, service: ServiceDep) -> Response:
    """Kelurahan outlines with code, name, kecamatan and kota (GeoJSON, from the project's data)."""
    cached = getattr(request.app.state, "boundaries", None)
    if cached is None:
        table = service.kelurahan.table
        frame = table[["kode_kemendagri", "kelurahan", "kecamatan", "kota", "geometry"]].copy()
        frame["geometry"] = frame.geometry.simplify(SIMPLIFY_DEGREES, preserve_topology=True)
        frame = frame.rename(columns={"kode_kemendagri": "code", "kelurahan": "name"})
        cached = frame.to_json(drop_id=True).encode()
        request.app.state.boundaries = cached
    return Response(
        cached, media_type="application/geo+json", headers={"Cache-Control": "max-age=3600"}
    )


def _epoch(value: datetime | None) -> float | None:
    at = store.as_utc(value)
    return None if at is None else round(at.timestamp(), 1)


def map_rows(conn: Connection, *, scope: str | None, exact: bool) -> list[list[Any]]:
    """Open reports and those closed in the last 24 hours, as rows of `COLUMNS`."""
    since = store.now_utc() - RECENTLY_CLOSED
    query = sa.select(
        reports.c.id,
        reports.c.lat,
        reports.c.lon,
        reports.c.status,
        reports.c.service_code,
        reports.c.kelurahan_code,
        reports.c.created_at,
        reports.c.coordinated_at,
    ).where(sa.or_(reports.c.status != "selesai", reports.c.closed_at >= since))
    if scope is not None:
        query = query.where(reports.c.kelurahan_code == scope)
    places = None if exact else COORDINATE_DECIMALS
    return [
        [
            r.id,
            round(r.lat, places) if places else r.lat,
            round(r.lon, places) if places else r.lon,
            r.status,
            r.service_code,
            r.kelurahan_code,
            _epoch(r.created_at),
            _epoch(r.coordinated_at),
        ]
        for r in conn.execute(query.order_by(reports.c.id))
    ]


def _rows_response(rows: list[list[Any]], scope: str | None) -> Response:
    body = {"columns": COLUMNS, "rows": rows, "scope": scope or "*", "now": _epoch(store.now_utc())}
    return Response(
        json.dumps(body, separators=(",", ":")),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/api/v1/ops/reports", response_class=Response, responses={**ROWS, **AUTH})
def ops_reports(officer: OfficerDep, service: ServiceDep) -> Response:
    """Your kelurahan's open reports and those closed in the last 24 h (all for an
    administrator), exact coordinates, as ``{"columns": [...], "rows": [[...], ...]}``; times
    are Unix seconds."""
    scope = officer_scope(officer)
    with service.engine.connect() as conn:
        rows = map_rows(conn, scope=scope, exact=True)
    return _rows_response(rows, scope)


@router.get("/api/v1/public/reports", response_class=Response, responses=ROWS)
def public_reports(service: ServiceDep) -> Response:
    """Every open report and those closed in the last 24 h: public fields only, coordinates
    rounded to 3 decimal places (about 110 m); the same row format as ``/api/v1/ops/reports``."""
    with service.engine.connect() as conn:
        rows = map_rows(conn, scope=None, exact=False)
    return _rows_response(rows, None)


@router.get(
    "/api/v1/ops/reports/{report_id}",
    responses={**AUTH, 404: {"description": "no such report in your kelurahan"}},
)
def ops_report(report_id: ReportId, officer: OfficerDep, service: ServiceDep) -> dict[str, Any]:
    """A report's detail for the map: the officers' view, its history and its proof photo."""
    scope = officer_scope(officer)
    with service.engine.connect() as conn:
        row = store.get_report(conn, report_id=report_id)
        if row is None or (scope is not None and row["kelurahan_code"] != scope):
            raise ApiError(404, f"no report {report_id} in your kelurahan")
        history = store.report_history(conn, report_id=report_id)
    view = officer_view(row, history, public_url=service.settings.public_url)
    photo = f"{MEDIA_PATH}/{row['photo_path']}" if row["photo_path"] else None
    return {**view.model_dump(mode="json"), "photo": photo}


@router.get(
    "/api/v1/public/reports/{report_id}", responses={404: {"description": "no such report"}}
)
def public_report(report_id: ReportId, service: ServiceDep) -> dict[str, Any]:
    """A report's public detail for the map: category, status, place, its status history and
    the proof photo; no description, no contact, no coordinates beyond the map's."""
    with service.engine.connect() as conn:
        row = store.get_report(conn, report_id=report_id)
        if row is None:
            raise ApiError(404, f"no report {report_id}")
        history = store.report_history(conn, report_id=report_id)
    return {
        "id": str(row["id"]),
        "category": row["service_code"],
        "status": row["status"],
        "kelurahan_code": row["kelurahan_code"],
        "history": [
            {"status": h["status"], "at": _iso(h["at"]), "note": h["note"]} for h in history
        ],
        "photo": f"{MEDIA_PATH}/{row['photo_path']}" if row["photo_path"] else None,
    }


def _iso(value: datetime | None) -> str | None:
    at = store.as_utc(value)
    return None if at is None else at.isoformat()
