"""Bounded credential caches and rate limits: failed authentication and new reports get 429
with ``Retry-After``; limits are configurable (``INTAKE_RATE_*``) and can be turned off."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from intake.config import Settings
from intake.errors import ApiError
from intake.main import create_app
from intake.ratelimit import DEFAULTS, RateLimits
from tests.intake.conftest import POINT_A, TEST_RATES, sqlite_with_key

REPORT = {"category": "garbage", **POINT_A}


@pytest.fixture
def settings(synthetic_dir: Path, tmp_path: Path) -> Settings:
    url, _ = sqlite_with_key(tmp_path / "limits.db")
    return Settings(
        database_url=url,
        data_dir=str(synthetic_dir),
        media_dir=tmp_path / "media",
        rate_failed_auth="5/minute",
        rate_reports_key="8/minute",
        rate_reports_address="6/minute",
        credential_cache_size=50,
    )


@pytest.fixture
def key(settings: Settings) -> str:
    return sqlite_with_key(Path(settings.database_url.removeprefix("sqlite:///")))[1]


def client(settings: Settings, **over: object) -> TestClient:
    return TestClient(create_app(dataclasses.replace(settings, **over)))


def assert_429(response: object, text: str) -> None:
    assert response.status_code == 429, response.text  # type: ignore[attr-defined]
    wait = int(response.headers["Retry-After"])  # type: ignore[attr-defined]
    assert 1 <= wait <= 60
    assert text in response.json()["detail"]  # type: ignore[attr-defined]


def test_the_defaults_are_documented_values() -> None:
    for name, variable in [("failed_auth", "INTAKE_RATE_FAILED_AUTH"),
                           ("reports_key", "INTAKE_RATE_REPORTS_KEY"),
                           ("reports_address", "INTAKE_RATE_REPORTS_ADDRESS")]:  # fmt: skip
        assert TEST_RATES[variable] != DEFAULTS[name]  # the suite raises them, not this test
    assert DEFAULTS == {
        "failed_auth": "30/minute",
        "reports_key": "100/second",
        "reports_address": "50/second",
    }
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for variable, value in [("INTAKE_RATE_FAILED_AUTH", "30/minute"),
                            ("INTAKE_RATE_REPORTS_KEY", "100/second"),
                            ("INTAKE_RATE_REPORTS_ADDRESS", "50/second")]:  # fmt: skip
        assert f"`{variable}` | `{value}`" in readme


@pytest.mark.parametrize("fast_path", [True, False])
def test_failed_authentication_is_limited_per_address(
    settings: Settings, key: str, fast_path: bool
) -> None:
    with client(settings, fast_path=fast_path) as c:
        for _ in range(5):
            wrong = {"X-API-Key": "key_" + secrets.token_urlsafe(24)}
            assert c.post("/api/v1/reports", json=REPORT, headers=wrong).status_code == 401
        # the sixth attempt is refused whatever it sends, the right key included
        assert_429(c.post("/api/v1/reports", json=REPORT, headers={"X-API-Key": key}), "failed")
        officer = {"Authorization": "Bearer off_guess"}
        assert_429(c.get("/api/v1/officer/queue", headers=officer), "too many failed")
        form = {"api_key": "guess", "service_code": "garbage", "lat": "-6.195", "long": "106.805"}
        r = c.post("/open311/v2/requests.json", data=form)
        assert r.status_code == 429
        assert r.json()[0]["code"] == 429


def test_failed_officer_tokens_count_too(settings: Settings) -> None:
    with client(settings) as c:
        for _ in range(5):
            r = c.get("/api/v1/officer/queue", headers={"Authorization": "Bearer off_x"})
            assert r.status_code == 401
        assert_429(c.get("/api/v1/officer/queue"), "too many failed")


@pytest.mark.parametrize("fast_path", [True, False])
def test_new_reports_are_limited_per_address_and_key(
    settings: Settings, key: str, fast_path: bool
) -> None:
    with client(settings, fast_path=fast_path) as c:
        statuses = [
            c.post("/api/v1/reports", json=REPORT, headers={"X-API-Key": key}).status_code
            for _ in range(6)
        ]
        assert statuses == [201] * 6
        assert_429(c.post("/api/v1/reports", json=REPORT, headers={"X-API-Key": key}), "from here")
    with client(settings, rate_reports_address="off") as c:
        for _ in range(8):
            assert (
                c.post("/api/v1/reports", json=REPORT, headers={"X-API-Key": key}).status_code
                == 201
            )
        assert_429(c.post("/api/v1/reports", json=REPORT, headers={"X-API-Key": key}), "this key")


def test_limits_can_be_turned_off_and_bad_ones_are_refused(settings: Settings, key: str) -> None:
    with client(settings, rate_reports_address="off", rate_reports_key="off") as c:
        for _ in range(20):
            assert (
                c.post("/api/v1/reports", json=REPORT, headers={"X-API-Key": key}).status_code
                == 201
            )
    with pytest.raises(ValueError, match="INTAKE_RATE_REPORTS_KEY='lots': expected a rate"):
        dataclasses.replace(settings, rate_reports_key="lots")


def test_retry_after_is_the_end_of_the_window() -> None:
    limits = RateLimits(failed_auth="2/second", reports_key="off", reports_address="off")
    limits.failed("10.0.0.1")
    limits.failed("10.0.0.1")
    with pytest.raises(ApiError) as refused:
        limits.check_address("10.0.0.1")
    assert (refused.value.status, refused.value.retry_after) == (429, 1)
    limits.check_address("10.0.0.2")  # another address is not affected
    time.sleep(1.05)
    limits.check_address("10.0.0.1")


def test_credential_caches_are_bounded(settings: Settings, key: str) -> None:
    """Random credentials are never remembered and the known ones at most `credential_cache_size`
    (before: 40,000 random keys and 24,490 tokens each grew the memory, never released)."""
    relaxed = dataclasses.replace(settings, rate_failed_auth="off")
    with client(relaxed) as c:
        service = c.app.app.state.service  # type: ignore[attr-defined]  # behind the fast path
        for _ in range(300):
            assert service.api_key("key_" + secrets.token_urlsafe(24)) is None
            assert service.officer("off_" + secrets.token_urlsafe(24)) is None
        assert len(service._keys) == len(service._officers) == 0
        for i in range(120):
            service._keys[f"known-{i}"] = {"id": i}
        assert len(service._keys) <= settings.credential_cache_size
        r = c.post("/api/v1/reports", json=REPORT, headers={"X-API-Key": key})
        assert r.status_code == 201


def test_a_large_body_without_credentials_is_refused_before_it_is_read(
    settings: Settings,
) -> None:
    """12 MB without a key: 401 at once; the body is never read (a stream that counts)."""
    body = json.dumps({**REPORT, "description": "x" * (settings.max_body_bytes - 200)}).encode()
    read = 0

    def stream() -> Iterator[bytes]:
        nonlocal read
        for i in range(0, len(body), 65536):
            read += 65536
            yield body[i : i + 65536]

    for fast_path in (True, False):
        read = 0
        with client(settings, fast_path=fast_path, rate_failed_auth="off") as c:
            r = c.post(
                "/api/v1/reports", content=stream(), headers={"Content-Type": "application/json"}
            )
            assert r.status_code == 401, r.text
            r = c.post(
                "/api/v1/officer/reports/1/resolve",
                content=stream(),
                headers={"Content-Type": "multipart/form-data; boundary=x"},
            )
            assert r.status_code == 401, r.text
        assert read <= 2 * 65536, (fast_path, read)
