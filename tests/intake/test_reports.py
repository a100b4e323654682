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
    got = api.client.get(f"/api/v1/reports/{report['id']}", headers=api.headers())
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


def test_openapi_documents_the_errors_as_sent(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    post = spec["paths"]["/api/v1/reports"]["post"]["responses"]
    assert post["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorMessage")
    bad = api.client.post("/api/v1/reports", json={"lat": 1}, headers={"X-API-Key": api.key})
    assert bad.status_code == 422
    assert isinstance(bad.json()["detail"], str)  # one line, as documented
    open311 = spec["paths"]["/open311/v2/requests.{fmt}"]["post"]["responses"]
    assert "422" not in open311  # Open311 answers 400 with its error list
    assert open311["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Open311Errors"
    )


def test_a_batch_mixing_report_shapes_keeps_every_field(api: Api) -> None:
    """One multi-row INSERT must not drop fields that only some reports of the batch carry."""
    import sqlalchemy as sa

    from intake.store import NewReport, insert_reports

    base = {
        "service_code": "garbage",
        "description": "",
        "lat": -6.195,
        "lon": 106.805,
        "kelurahan_code": KEL_A,
        "channel": "jaki",
    }
    rich = {
        **base,
        "address_string": "Jl. Satu 1",
        "device_id": "dev-1",
        "reporter_email": "a@b.id",
    }
    engine = make_engine(api.settings.database_url)
    for order in ([base, rich], [rich, base]):
        with engine.begin() as conn:
            out = insert_reports(conn, batch=[NewReport(v, 1, None, "h") for v in order])
        ids = [o[0]["id"] for o in out]  # type: ignore[index]
        with engine.connect() as conn:
            rows = {r.id: r for r in conn.execute(sa.select(reports).where(reports.c.id.in_(ids)))}
        for values, rid in zip(order, ids, strict=True):
            assert rows[rid].address_string == values.get("address_string")
            assert rows[rid].device_id == values.get("device_id")
    engine.dispose()
