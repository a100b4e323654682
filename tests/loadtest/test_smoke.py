"""End to end: `twin loadtest` against the real API on loopback, with SIGKILLs and the audit.

Every run is bounded (Locust stops by itself; the subprocess has a timeout) and targets only
127.0.0.1. The city is built before the timed runs (`real_city`), as CI's first test run may
otherwise spend 25 s building its cache inside the smoke test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def loadtest(
    data_dir: Path, out: Path, *args: str, timeout: float = 120
) -> tuple[int, dict[str, Any], float]:
    """Run `twin loadtest`; (exit code, summary.json, wall seconds)."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "twin_cli", "loadtest", "--data", str(data_dir), "--out", str(out), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip
    wall = time.monotonic() - started
    assert (out / "summary.json").is_file(), proc.stdout + proc.stderr
    return proc.returncode, json.loads((out / "summary.json").read_text()), wall


def test_smoke_with_one_kill_loses_nothing(
    real_city: Any, real_data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "smoke"
    code, summary, wall = loadtest(real_data_dir, out, "--profile", "smoke", "--kill", "1")
    assert code == 0, summary["reasons"]
    assert wall <= 30, f"smoke took {wall:.1f} s"
    assert len(summary["kill_log"]) == 1
    assert summary["acknowledged"] > 20
    assert summary["stored"] >= summary["acknowledged"]
    assert (summary["lost"], summary["duplicates"]) == (0, 0)
    audit = summary["audit"]
    assert (audit["unexpected"], audit["wrong_kelurahan"], audit["altered"]) == (0, 0, 0)
    assert audit["retried"] > 0  # the kill made clients retry with the same key
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv",
                 "locust.html", "loadtest.png", "payloads.jsonl", "run.json"):  # fmt: skip
        assert (out / name).is_file(), name
    assert not (out / "credentials.json").exists()
    endpoints = summary["endpoints"]
    for name in (
        "POST /api/v1/reports",
        "POST /open311/v2/requests.json",
        "GET /api/v1/reports/{id}",
    ):
        assert endpoints[name]["requests"] > 0, name
    assert {"p50_ms", "p95_ms", "p99_ms", "rps"} <= endpoints["POST /api/v1/reports"].keys()


@pytest.mark.parametrize("idempotency", [False, True], ids=["keys-off", "keys-on"])
def test_lost_answers_duplicate_reports_only_without_idempotency_keys(
    real_city: Any, real_data_dir: Path, tmp_path: Path, idempotency: bool
) -> None:
    """The audit can fail: with 10 ms client timeouts (answers lost after the commit) and a kill,
    retries without a key store reports twice, and the audit says so; with keys, never."""
    args = ["--profile", "smoke", "--duration", "8", "--users", "20", "--kill", "1",
            "--client-timeout", "0.01"]  # fmt: skip
    code, summary, _ = loadtest(
        real_data_dir, tmp_path / "run", *args, *([] if idempotency else ["--no-idempotency"])
    )
    assert summary["lost"] == 0
    if idempotency:
        assert code == 0, summary["reasons"]
        assert summary["duplicates"] == 0
        assert summary["audit"]["replayed"] > 0  # the hard path happened, and was replayed
    else:
        assert code == 1
        assert summary["duplicates"] > 0
        assert any("duplicates" in r for r in summary["reasons"])


def test_locustfile_runs_as_plain_locust(
    real_city: Any, real_data_dir: Path, tmp_path: Path
) -> None:
    """STYLE 8: the API, then `locust -f loadtest/locustfile.py --headless ... --exit-code-on-error 1`."""
    from intake.bench import free_port
    from loadtest.audit import audit, read_ledger, read_stored
    from loadtest.options import DEFAULT_SCENARIO
    from loadtest.payloads import build_pool, write_pool
    from loadtest.server import Server, issue_credentials, migrate_database, warm_up
    from twin.model.scenario import load_scenario

    run_dir = tmp_path / "run"
    pool, meta = build_pool(real_city, load_scenario(DEFAULT_SCENARIO), seed=5)
    write_pool(run_dir, pool, meta)
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    migrate_database(url)
    server = Server(
        url, port=free_port(), data_dir=str(real_data_dir), workers=1,
        log_path=tmp_path / "server.log", media_dir=tmp_path / "media",
    )  # fmt: skip
    server.start()
    try:
        credentials = issue_credentials(
            url, officer_kelurahan=meta["busiest_kelurahan"][:1], data_dir=str(real_data_dir)
        )
        warm_up(server.url, credentials["api_key"])
        (run_dir / "credentials.json").write_text(json.dumps(credentials))
        env = {**os.environ, "LOADTEST_RUN_DIR": str(run_dir), "LOADTEST_RUN_TAG": "ltplain",
               "PYTHONPATH": str(ROOT)}  # fmt: skip
        env.pop("LOADTEST_PROFILE", None)
        proc = subprocess.run(
            [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--headless",
             "-u", "5", "-r", "5", "-t", "10s", "--exit-code-on-error", "1", "--host", server.url,
             "--loglevel", "WARNING", "--only-summary"],
            capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
        )  # fmt: skip
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ledger = read_ledger(run_dir)
    stored = read_stored(url, "ltplain")

    def relocate(lons: Any, lats: Any) -> list[str | None]:
        rows = real_city.kelurahan.locate_many(list(lons), list(lats))
        return [str(real_city.kelurahan.codes[r]) if r >= 0 else None for r in rows]

    result = audit(ledger, stored, pool, relocate)
    assert result["ok"], result
    assert result["acknowledged"] > 10
