"""The map pages' data: scoped by token, refused without one, public rows without PII."""

from __future__ import annotations

from intake.db import make_engine, officers
from intake.store import hash_secret
from tests.intake.conftest import KEL_A, KEL_B, POINT_A, POINT_B, Api
from tests.intake.test_officers import new_officer

PII = {"name": "Rina Wati", "email": "rina@example.org", "phone": "+62 815 1111 2222"}


def post(api: Api, point: dict[str, float]) -> str:
    body = {
        "category": "trees",
        **point,
        "description": "pohon tumbang dekat Rina",
        "reporter": PII,
    }
    r = api.client.post("/api/v1/reports", json=body, headers=api.headers())
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def deactivate(api: Api, token: str) -> None:
    engine = make_engine(api.settings.database_url)
    with engine.begin() as conn:
        conn.execute(
            officers.update()
            .where(officers.c.token_hash == hash_secret(token))
            .values(active=False)
        )
    engine.dispose()


def rows(api: Api, path: str, token: str | None = None) -> list[dict[str, object]]:
    r = api.client.get(path, headers=api.bearer(token) if token else {})
    assert r.status_code == 200, r.text
    data = r.json()
    return [dict(zip(data["columns"], row, strict=True)) for row in data["rows"]]


def test_ops_rows_are_scoped_and_exact(api: Api) -> None:
    a, b = post(api, POINT_A), post(api, POINT_B)
    mine = rows(api, "/api/v1/ops/reports", api.officer)
    assert [str(r["id"]) for r in mine] == [a]
    assert mine[0]["kelurahan_code"] == KEL_A
    assert (mine[0]["lat"], mine[0]["lon"]) == (POINT_A["lat"], POINT_A["lon"])
    assert [str(r["id"]) for r in rows(api, "/api/v1/ops/reports", api.officer_b)] == [b]
    admin = new_officer(api, kelurahan_code="*", role="admin")
    assert {str(r["id"]) for r in rows(api, "/api/v1/ops/reports", admin)} == {a, b}
    r = api.client.get(f"/api/v1/ops/reports/{a}", headers=api.bearer(api.officer_b))
    assert r.status_code == 404
    detail = api.client.get(f"/api/v1/ops/reports/{a}", headers=api.bearer(api.officer)).json()
    assert [h["status"] for h in detail["history"]] == ["menunggu"]
    assert detail["kelurahan_code"] == KEL_A


def test_bad_tokens_get_nothing(api: Api) -> None:
    post(api, POINT_A)
    paths = ["/api/v1/ops/reports", "/api/v1/ops/reports/1", "/api/v1/events", "/api/v1/export"]
    for path in paths:
        for headers in ({}, api.bearer("off_forged"), {"Authorization": "Basic abc"}):
            r = api.client.get(
                path, headers=headers, params={"since": "2026-01-01", "until": "2026-01-02"}
            )
            assert r.status_code == 401, (path, headers)
            assert "menunggu" not in r.text
    deactivate(api, api.officer_b)
    for path in paths:
        r = api.client.get(
            path,
            headers=api.bearer(api.officer_b),
            params={"since": "2026-01-01", "until": "2026-01-02"},
        )
        assert r.status_code == 403, path
        assert "menunggu" not in r.text


def test_public_rows_are_rounded_and_without_pii(api: Api) -> None:
    a = post(api, {"lat": -6.1951234, "lon": 106.8054321})
    public = rows(api, "/api/v1/public/reports")
    assert [(str(r["id"]), r["lat"], r["lon"]) for r in public] == [(a, -6.195, 106.805)]
    detail = api.client.get(f"/api/v1/public/reports/{a}")
    assert detail.status_code == 200
    for text in (str(public), detail.text):
        for secret in [*PII.values(), "Rina", "pohon tumbang", "1234"]:
            assert secret not in text
    assert api.client.get("/api/v1/public/reports/999999").status_code == 404
    geo = api.client.get("/api/v1/ops/kelurahan.geojson")
    assert geo.headers["content-type"] == "application/geo+json"
    assert {f["properties"]["code"] for f in geo.json()["features"]} >= {KEL_A, KEL_B}


def test_pages_and_leaflet_are_served_by_the_app(api: Api) -> None:
    for page in ("/ops", "/map"):
        r = api.client.get(page)
        assert r.status_code == 200
        assert "/static/leaflet/leaflet.js" in r.text
        assert "http" not in r.text.replace("http-equiv", "")  # nothing from elsewhere
    js = api.client.get("/static/leaflet/leaflet.js")
    assert js.status_code == 200
    assert "Leaflet 1.9.4" in js.text[:200]
    assert "BSD 2-Clause" in api.client.get("/static/leaflet/LICENSE").text
    assert api.client.get("/static/ops.js").status_code == 200
