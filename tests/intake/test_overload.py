"""Load shedding: when the database cannot keep up, new reports get 503 at once, nothing lost."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient

from intake.config import Settings
from intake.main import create_app
from tests.intake.conftest import POINT_A, sqlite_with_key


def test_a_stalled_database_sheds_load_with_503_and_keeps_what_it_acknowledged(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "stalled.db"
    url, key = sqlite_with_key(db)
    settings = Settings(
        database_url=url, data_dir=str(synthetic_dir), media_dir=tmp_path / "m", max_pending=1
    )
    headers = {"X-API-Key": key}
    with TestClient(create_app(settings)) as client:
        client.post("/api/v1/reports", json={"category": "trees", **POINT_A}, headers=headers)
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock: commits stall
        with ThreadPoolExecutor(max_workers=2) as pool:
            stalled = pool.submit(  # taken by the writer, which now waits for the lock
                client.post, "/api/v1/reports", json={"category": "roads", **POINT_A},
                headers={**headers, "Idempotency-Key": "first"},
            )  # fmt: skip
            time.sleep(0.3)
            queued = pool.submit(  # waits in the queue: the one report allowed to
                client.post, "/api/v1/reports", json={"category": "flood", **POINT_A},
                headers={**headers, "Idempotency-Key": "second"},
            )  # fmt: skip
            time.sleep(0.3)
            shed = client.post(
                "/api/v1/reports",
                json={"category": "garbage", **POINT_A},
                headers={**headers, "Idempotency-Key": "third"},
            )
            assert shed.status_code == 503
            assert shed.headers["Retry-After"] == "1"
            assert "retry" in shed.json()["detail"]
            blocker.execute("ROLLBACK")  # the database recovers
            assert stalled.result(timeout=30).status_code == 201
            assert queued.result(timeout=30).status_code == 201
        blocker.close()
        retried = client.post(  # the citizen's retry, same key, now goes through
            "/api/v1/reports",
            json={"category": "garbage", **POINT_A},
            headers={**headers, "Idempotency-Key": "third"},
        )
        assert retried.status_code == 201
    stored = sqlite3.connect(db).execute("SELECT service_code FROM reports ORDER BY id").fetchall()
    assert [s for (s,) in stored] == ["trees", "roads", "flood", "garbage"]
