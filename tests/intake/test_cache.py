"""Recent KPI results: reused for a while, computed once at a time, and said how fresh."""

from __future__ import annotations

import dataclasses
import threading
import time

from fastapi.testclient import TestClient

from intake.cache import RecentResults
from intake.main import create_app
from tests.intake.conftest import KEL_A, Api
from tests.intake.test_officers import post_report


def test_a_result_is_reused_until_it_is_stale() -> None:
    calls: list[int] = []
    recent = RecentResults(0.2)
    first, at = recent.get("k", lambda: calls.append(1) or len(calls))
    again, at_again = recent.get("k", lambda: calls.append(1) or len(calls))
    assert (first, again, at_again) == (1, 1, at)
    assert recent.get("other", lambda: "x")[0] == "x"  # keys are apart
    time.sleep(0.25)
    assert recent.get("k", lambda: calls.append(1) or len(calls))[0] == 2


def test_zero_seconds_computes_every_time() -> None:
    recent = RecentResults(0)
    calls: list[int] = []
    for _ in range(3):
        recent.get("k", lambda: calls.append(1))
    assert len(calls) == 3


def test_concurrent_requests_share_one_computation() -> None:
    recent = RecentResults(60)
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.1)
        return 7

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(recent.get("ranking", slow)[0]))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(calls), results) == (1, [7] * 8)


def test_kpi_endpoints_serve_recent_results_and_say_so(api: Api) -> None:
    cached = dataclasses.replace(api.settings, kpi_cache_seconds=60)
    with TestClient(create_app(cached)) as client:
        first = client.get("/api/v1/kpis/ranking")
        post_report(api)  # a new report within the minute: the ranking served is the earlier one
        second = client.get("/api/v1/kpis/ranking")
        kel = client.get(f"/api/v1/kpis/kelurahan/{KEL_A}")
    assert first.json() == second.json()
    assert first.json()["count"] == 0
    assert 55 <= int(second.headers["cache-control"].split("max-age=")[1]) <= 60
    assert kel.json()["reports"] == 1  # another key: computed now
    assert kel.json()["as_of"] >= first.json()["as_of"]
    fresh = api.client.get("/api/v1/kpis/ranking")  # the test app computes every time
    assert fresh.json()["count"] == 1
    assert fresh.headers["cache-control"] == "public, max-age=0"
