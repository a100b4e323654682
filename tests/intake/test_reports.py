"""Native JSON API: report, track, idempotency, routing, access."""

from __future__ import annotations

import sqlalchemy as sa

from intake.db import make_engine, reports
from tests.intake.conftest import KEL_A, POINT_A, Api


def body(**over: object) -> dict[str, object]:
    return {"category": "garbage", **POINT_A, "description": "sampah menumpuk", **over}


def count_reports(api: Api) -> int:
    engine = make_engine(api.settings.database_url)
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(reports)).scalar_one()
    engine.dispose()
    return int(n)


def test_post_and_track(api: Api) -> None:
    r = api.client.post("/api/v1/reports", json=body(), headers=api.headers())
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["kelurahan_code"] == KEL_A
    assert report["status"] == "menunggu"
    assert report["open311_status"] == "open"
    assert isinstance(report["id"], str)
    got = api.client.get(f"/api/v1/reports/{report['id']}")
    assert got.status_code == 200
    assert [h["status"] for h in got.json()["history"]] == ["menunggu"]
    assert got.json()["created_at"].endswith(("Z", "+00:00"))


def test_idempotency_replay_and_conflict(api: Api) -> None:
    h = api.headers(**{"Idempotency-Key": "abc-123"})
    first = api.client.post("/api/v1/reports", json=body(), headers=h)
    again = api.client.post("/api/v1/reports", json=body(), headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = api.client.post("/api/v1/reports", json=body(description="lain"), headers=h)
    assert other.status_code == 422
    assert "different request body" in other.json()["detail"]
    assert count_reports(api) == 1


def test_outside_jakarta_is_refused_and_not_stored(api: Api) -> None:
    r = api.client.post(
        "/api/v1/reports", json=body(lat=-6.9, lon=107.6), headers=api.headers()
    )  # Bandung
    assert r.status_code == 422
    assert "outside Jakarta" in r.json()["detail"]
    assert count_reports(api) == 0


def test_api_key_required(api: Api) -> None:
    assert api.client.post("/api/v1/reports", json=body()).status_code == 401
    assert (
        api.client.post("/api/v1/reports", json=body(), headers={"X-API-Key": "nope"}).status_code
        == 401
    )
    assert count_reports(api) == 0


def test_health_and_openapi(api: Api) -> None:
    health = api.client.get("/health").json()
    assert health["status"] == "ok"
    assert api.client.get("/openapi.json").json()["info"]["title"] == "jakarta-twin intake"
    assert api.client.get("/docs").status_code == 200
