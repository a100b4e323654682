"""The fast path answers POST /api/v1/reports exactly as the FastAPI route does."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from intake.main import create_app
from tests.intake.conftest import POINT_A, sqlite_with_key
from tests.intake.test_bad_input import body

CASES: list[tuple[str, dict[str, str], bytes]] = [
    ("valid", {}, json.dumps(body()).encode()),
    ("no key", {"X-API-Key": ""}, json.dumps(body()).encode()),
    ("bad key", {"X-API-Key": "wrong"}, json.dumps(body()).encode()),
    ("unknown field", {}, json.dumps(body(status="selesai")).encode()),
    ("bad category", {}, json.dumps(body(category="potholes")).encode()),
    ("lat out of range", {}, json.dumps(body(lat=-100)).encode()),
    ("lat text", {}, json.dumps(body(lat="south")).encode()),
    ("missing fields", {}, json.dumps({"lat": POINT_A["lat"]}).encode()),
    ("NaN", {}, b'{"category": "garbage", "lat": NaN, "lon": 106.8}'),
    ("malformed JSON", {}, b'{"category": '),
    ("outside Jakarta", {}, json.dumps(body(lat=-6.9, lon=107.6)).encode()),
    ("bad idempotency key", {"Idempotency-Key": "has space"}, json.dumps(body()).encode()),
    ("long description", {}, json.dumps(body(description="x" * 5000)).encode()),
]


@pytest.fixture
def clients(synthetic_dir: Path, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, str]]:
    from intake.config import Settings

    url, key = sqlite_with_key(tmp_path / "parity.db")
    fast = Settings(
        database_url=url, data_dir=str(synthetic_dir), media_dir=tmp_path / "m", fast_path=True
    )
    slow = dataclasses.replace(fast, fast_path=False)
    with TestClient(create_app(fast)) as a, TestClient(create_app(slow)) as b:
        yield a, b, key


@pytest.mark.parametrize(("name", "headers", "raw"), CASES, ids=[c[0] for c in CASES])
def test_same_answers_with_and_without_the_fast_path(
    clients: tuple[TestClient, TestClient, str], name: str, headers: dict[str, str], raw: bytes
) -> None:
    fast, slow, key = clients
    sent = {"X-API-Key": key, "Content-Type": "application/json", **headers}
    a = fast.post("/api/v1/reports", content=raw, headers=sent)
    b = slow.post("/api/v1/reports", content=raw, headers=sent)
    assert a.status_code == b.status_code, (a.text, b.text)
    if a.status_code == 201:
        assert set(a.json()) == set(b.json())
        assert a.json()["kelurahan_code"] == b.json()["kelurahan_code"]
    else:
        assert a.json()["detail"] == b.json()["detail"]


def test_an_unexpected_error_is_a_500_and_the_body_is_not_logged(
    clients: tuple[TestClient, TestClient, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The fast path sits outside FastAPI's error handling, so it must keep its promise itself."""
    fast, _, key = clients

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr("intake.routes.reports.accept_report", broken)
    raw = json.dumps(body(reporter={"email": "warga@example.com"})).encode()
    answer = fast.post(
        "/api/v1/reports",
        content=raw,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error"}
    assert "RuntimeError" in caplog.text
    assert "warga@example.com" not in caplog.text
