"""Hostile input found by the outside audit (issue 17): NUL bytes, idempotency races across
processes, unexpected errors. Each answer is a 4xx (or the replay), never a 500 or a 503 for a
permanent fault, nothing is stored, and the logs carry neither bodies nor keys."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from intake.db import history, idempotency, make_engine, migrate, reports
from intake.errors import ApiError
from intake.store import NewReport, now_utc
from intake.writer import GroupCommitWriter
from tests.intake.conftest import (
    KEL_A,
    PG_URL,
    POINT_A,
    Api,
    _postgres_available,
    reset_postgres,
)
from tests.intake.test_officers import claim, coordinator_post, jpeg_with_gps, post_report, stored
from tests.intake.test_reports import body, count_reports

NUL = "a\u0000b"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(description=NUL), "description"),
        (body(reporter={"name": NUL}), "reporter.name"),
        (body(media_url="http://example.id/\u0000.jpg"), "media_url"),
        (body(reporter={"email": "warga\u0000@example.id"}), "reporter.email"),
        (body(description="bell\u0007"), "description"),
    ],
)
def test_control_characters_in_a_report_are_a_422_and_nothing_is_stored(
    api: Api, payload: dict[str, Any], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = api.headers(**{"Idempotency-Key": "nul-sentinel-key"})
    for _ in range(2):  # permanent: the same answer again, and never "retry"
        r = api.client.post("/api/v1/reports", json=payload, headers=headers)
        assert r.status_code == 422, r.text
        assert "Retry-After" not in r.headers
        assert r.json()["detail"].startswith(field + ":")
    assert count_reports(api) == 0
    assert "nul-sentinel-key" not in caplog.text
    assert api.key not in caplog.text


def test_tabs_and_newlines_remain_allowed(api: Api) -> None:
    r = api.client.post(
        "/api/v1/reports", json=body(description="baris 1\r\n\tbaris 2"), headers=api.headers()
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("action", "payload"),
    [("dispatch", {"crew": NUL}), ("handover", {"agency": NUL})],
)
def test_control_characters_in_a_disposition_are_a_422(
    api: Api, action: str, payload: dict[str, str]
) -> None:
    report_id = post_report(api)
    r = coordinator_post(api, report_id, action, api.coordinator, **payload)
    assert r.status_code == 422, r.text
    assert "control characters (such as NUL) are not allowed" in r.json()["detail"]
    assert stored(api, report_id)["status"] == "menunggu"


def test_control_characters_in_a_resolve_note_are_a_422(api: Api) -> None:
    report_id = post_report(api)
    assert claim(api, report_id, api.officer).status_code == 200
    r = api.client.post(
        f"/api/v1/officer/reports/{report_id}/resolve",
        files={"photo": ("p.jpg", jpeg_with_gps(), "image/jpeg")},
        data={"note": NUL},
        headers=api.bearer(api.officer),
    )
    assert r.status_code == 422, r.text
    assert "control characters" in r.json()["detail"]
    assert stored(api, report_id)["status"] == "proses"


def test_open311_token_with_a_nul_is_a_404(api: Api) -> None:
    r = api.client.get("/open311/v2/tokens/a%00b.json")
    assert r.status_code == 404, r.text


def test_a_logged_path_carries_no_token() -> None:
    from intake.main import loggable

    token = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert loggable(f"/api/v1/reports/track/{token}") == "/api/v1/reports/track/<redacted>"
    assert loggable("/api/v1/coordinator/reports/12/dispatch") == (
        "/api/v1/coordinator/reports/12/dispatch"
    )


def test_an_unexpected_error_is_answered_500_without_a_traceback(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette's handler for Exception re-raises (a traceback in the server log, a dropped
    keep-alive connection); the service answers and stops there."""

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("intake.workflow.coordinate", broken)
    strict = TestClient(api.client.app, raise_server_exceptions=True)
    report_id = post_report(api)
    r = strict.post(
        f"/api/v1/coordinator/reports/{report_id}/coordinate", headers=api.bearer(api.coordinator)
    )
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error"}


# --- the group-commit writer, at the database ---------------------------------------------------


@pytest.fixture
def postgres_url() -> str:
    """PostgreSQL only: SQLite stores NUL, and its writers queue (``BEGIN IMMEDIATE``)."""
    reason = _postgres_available()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI: {reason}")
        pytest.skip(f"PostgreSQL at {PG_URL} not reachable ({reason})")
    reset_postgres()
    return PG_URL


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(postgres_url)
    migrate(engine)
    yield engine
    engine.dispose()


def new_report(description: str = "ok", key: str | None = None) -> NewReport:
    values = {
        "service_code": "garbage",
        "description": description,
        **POINT_A,
        "kelurahan_code": KEL_A,
        "channel": "jaki",
    }
    return NewReport(values, 1, key, body_hash=description)


def test_a_report_the_database_refuses_is_isolated_in_few_transactions(
    pg_engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """One unstorable report among 64: it gets 422 (not 503), the 63 others are stored, and it
    costs about 2 log2(64) extra transactions, not one per report."""
    caplog.set_level(logging.DEBUG)
    begins: list[float] = []

    def on_begin(_: object) -> None:
        begins.append(time.monotonic())
        if len(begins) == 1:
            time.sleep(0.5)  # hold the first batch, so the next 64 reports queue as one batch

    sa.event.listen(pg_engine, "begin", on_begin)
    writer = GroupCommitWriter(pg_engine, batch_max=256)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(writer.submit(new_report("first")))
        await asyncio.sleep(0.2)
        batch = [new_report(f"good {i}") for i in range(64)]
        batch[37] = new_report("secret-body \u0000 text")
        outcomes = await asyncio.gather(*(writer.submit(r) for r in batch), return_exceptions=True)
        await first
        return outcomes

    try:
        outcomes = asyncio.run(scenario())
    finally:
        writer.close()
    refused = outcomes[37]
    assert isinstance(refused, ApiError)
    assert refused.status == 422
    assert refused.retry_after is None
    assert all(isinstance(o, tuple) for i, o in enumerate(outcomes) if i != 37)
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(reports)).scalar_one() == 64
    assert len(begins) - 1 <= 2 * math.ceil(math.log2(64)) + 2, len(begins)  # old: 66
    assert "secret-body" not in caplog.text
    assert "Traceback" not in caplog.text


def test_an_idempotency_key_committed_by_another_process_meanwhile_is_a_replay(
    pg_engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Two worker processes, one key: the other commits between this batch's read of the keys
    and its insert. The answer is the other's report (a replay), not a 503 with a traceback."""
    caplog.set_level(logging.DEBUG)
    key = "race-" + uuid.uuid4().hex
    other_id: list[int] = []

    def other_process_commits(conn: Any, cursor: Any, statement: str, *_: object) -> None:
        if other_id or not statement.startswith("INSERT INTO idempotency_keys"):
            return
        other = make_engine(str(pg_engine.url.render_as_string(hide_password=False)))
        with other.begin() as c:
            at = now_utc()
            row = {"token": str(uuid.uuid4()), "service_code": "garbage", "description": "same",
                   **POINT_A, "kelurahan_code": KEL_A, "channel": "jaki", "status": "menunggu",
                   "created_at": at, "updated_at": at}  # fmt: skip
            rid = c.execute(reports.insert().values(**row).returning(reports.c.id)).scalar_one()
            c.execute(history.insert().values(report_id=rid, status="menunggu", at=at))
            c.execute(
                idempotency.insert().values(
                    api_key_id=1, key=key, body_hash="same", report_id=rid, created_at=at
                )
            )
        other.dispose()
        other_id.append(rid)

    sa.event.listen(pg_engine, "before_cursor_execute", other_process_commits)
    writer = GroupCommitWriter(pg_engine)
    try:
        row, replayed = asyncio.run(writer.submit(new_report("same", key=key)))
    finally:
        writer.close()
    assert other_id
    assert (row["id"], replayed) == (other_id[0], True)
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(reports)).scalar_one() == 1
    assert key not in caplog.text
    assert "Traceback" not in caplog.text


def test_the_same_key_racing_two_worker_processes_never_gets_a_503(
    postgres_url: str, synthetic_dir: Any
) -> None:
    """The audit's reproduction: `twin serve --workers 2` on PostgreSQL, one key raced."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx2 as httpx

    from intake.bench import issue_key, running_server

    key = issue_key(postgres_url)
    with running_server(postgres_url, data_dir=str(synthetic_dir), workers=2) as (base, _):
        with httpx.Client(base_url=base, timeout=30) as client:

            def post(i: int) -> int:
                headers = {"X-API-Key": key, "Idempotency-Key": f"race-{i // 10}"}
                return client.post("/api/v1/reports", json=body(), headers=headers).status_code

            with ThreadPoolExecutor(max_workers=20) as pool:
                statuses = list(pool.map(post, range(300)))
        assert set(statuses) <= {201, 409}, sorted(set(statuses))
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(reports)).scalar_one() == 30
    engine.dispose()
