"""Bad input to the native API: one test per class, each a 4xx with a clear message, never a
5xx, and nothing stored."""

from __future__ import annotations

import json
import logging

import pytest

from tests.intake.conftest import POINT_A, Api
from tests.intake.test_reports import body, count_reports


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ({"lat": -6.195, "lon": 106.805}, 422, "category: Field required"),
        ({"category": "garbage", "lon": 106.805}, 422, "lat: Field required"),
        (body(lat="south"), 422, "lat: Input should be a valid number"),
        (body(category=7), 422, "category: Input should be a valid string"),
        (body(lat=-96.0), 422, "lat: Input should be greater than or equal to -90"),
        (body(lon=181.0), 422, "lon: Input should be less than or equal to 180"),
        (
            body(lat=106.805, lon=-6.195),
            422,
            "lat: Input should be less than or equal to 90",
        ),  # swapped
        (body(category="potholes"), 422, "unknown category 'potholes'"),
        (
            body(description="x" * 4001),
            422,
            "description: String should have at most 4000 characters",
        ),
        (body(status="selesai"), 422, "status: this field may not be set by a client"),
        (body(kelurahan_code="31.71.01.1002"), 422, "kelurahan_code: this field may not be set"),
        (body(id=99), 422, "id: this field may not be set"),
        (body(created_at="2020-01-01T00:00:00Z"), 422, "created_at: this field may not be set"),
        (body(channel="pigeon"), 422, "unknown channel 'pigeon'"),
        (body(reporter={"email": "not-an-email"}), 422, "reporter.email"),
        (body(media_url="file:///etc/passwd"), 422, "media_url"),
        (body(lat=-6.9, lon=107.6), 422, "outside Jakarta"),
        ([1, 2, 3], 422, "body: Input should be"),
    ],
)
def test_invalid_fields(api: Api, payload: object, status: int, fragment: str) -> None:
    r = api.client.post("/api/v1/reports", json=payload, headers=api.headers())
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]
    assert count_reports(api) == 0


@pytest.mark.parametrize(
    "raw",
    [
        '{"category": "garbage", "lat": NaN, "lon": 106.8}',
        '{"category": "garbage", "lat": Infinity, "lon": 106.8}',
    ],
)
def test_nan_and_infinity(api: Api, raw: str) -> None:
    r = api.client.post(
        "/api/v1/reports", content=raw, headers=api.headers(**{"Content-Type": "application/json"})
    )
    assert r.status_code in (400, 422)
    assert "lat" in r.json()["detail"] or "malformed" in r.json()["detail"]
    assert count_reports(api) == 0


@pytest.mark.parametrize(
    "raw", ['{"category": "garbage", "lat": -6.19', "not json at all", "\xff\xfe"]
)
def test_malformed_json(api: Api, raw: str) -> None:
    r = api.client.post(
        "/api/v1/reports",
        content=raw.encode("latin-1"),
        headers=api.headers(**{"Content-Type": "application/json"}),
    )
    assert r.status_code == 400
    assert r.json()["detail"] == "malformed JSON body"
    assert count_reports(api) == 0


def test_wrong_content_type(api: Api) -> None:
    r = api.client.post(
        "/api/v1/reports",
        content=json.dumps(body()),
        headers=api.headers(**{"Content-Type": "text/plain"}),
    )
    assert 400 <= r.status_code < 500
    assert r.json()["detail"]
    assert count_reports(api) == 0


def test_oversized_body(api: Api) -> None:
    big = json.dumps(body(description="x" * (api.settings.max_body_bytes + 10)))
    r = api.client.post(
        "/api/v1/reports", content=big, headers=api.headers(**{"Content-Type": "application/json"})
    )
    assert r.status_code == 413
    assert "request body over" in r.json()["detail"]
    assert count_reports(api) == 0


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "kunci-é"])
def test_malformed_idempotency_key(api: Api, key: str) -> None:
    headers = {
        "X-API-Key": api.key,
        "Idempotency-Key": key.encode("utf-8"),
    }  # raw bytes on the wire
    r = api.client.post("/api/v1/reports", json=body(), headers=headers)
    assert r.status_code == 400
    assert "Idempotency-Key" in r.json()["detail"]
    assert count_reports(api) == 0


def test_bad_report_ids(api: Api) -> None:
    assert api.client.get("/api/v1/reports/999999", headers=api.headers()).status_code == 404
    r = api.client.get("/api/v1/reports/abc", headers=api.headers())
    assert r.status_code == 422
    assert "report_id" in r.json()["detail"]


def test_no_pii_in_public_responses_or_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    sentinels = {
        "name": "Sentinel Namawarga",
        "email": "sentinel.pii@example.id",
        "phone": "+62 811 0000 4242",
    }
    caplog.set_level(logging.DEBUG)
    r = api.client.post("/api/v1/reports", json=body(reporter=sentinels), headers=api.headers())
    assert r.status_code == 201
    seen = [r.text, api.client.get(f"/api/v1/reports/{r.json()['id']}", headers=api.headers()).text]
    seen += [rec.getMessage() for rec in caplog.records]
    for value in sentinels.values():
        assert all(value not in text for text in seen), value


def test_media_url_is_stored_not_fetched(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server tried to open a connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    url = "http://169.254.169.254/latest/meta-data/"
    r = api.client.post("/api/v1/reports", json=body(media_url=url), headers=api.headers())
    assert r.status_code == 201
    assert r.json()["media_url"] == url
    assert POINT_A["lat"] == r.json()["lat"]
