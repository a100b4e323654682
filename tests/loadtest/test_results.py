"""Locust's files and the verdict: unit tests (no server, no Locust)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from loadtest.profiles import PROFILES
from loadtest.results import locust_stats, verdict


def _write_stats(prefix: Path, rows: list[dict[str, object]], failures: list[list[object]]) -> None:
    columns = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time",
               "Average Response Time", "Min Response Time", "Max Response Time",
               "Average Content Size", "Requests/s", "Failures/s", "50%", "66%", "75%", "80%",
               "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]  # fmt: skip
    with open(f"{prefix}_stats.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="N/A")
        writer.writeheader()
        writer.writerows(rows)
    with open(f"{prefix}_failures.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Method", "Name", "Error", "Occurrences"])
        out.writerows(failures)


def test_locust_stats_are_read_per_endpoint(tmp_path: Path) -> None:
    prefix = tmp_path / "locust"
    _write_stats(
        prefix,
        [
            {"Type": "POST", "Name": "/api/v1/reports", "Request Count": 90, "Failure Count": 5,
             "Requests/s": 9.0, "50%": 8, "95%": 30, "99%": 60, "Max Response Time": 70},
            {"Type": "", "Name": "Aggregated", "Request Count": 100, "Failure Count": 6,
             "Requests/s": 10.0, "50%": 9, "95%": 40, "99%": 80, "Max Response Time": 90},
        ],
        [["POST", "/api/v1/reports", "CatchResponseError('connection error: ConnectionRefusedError')", 5],
         ["GET", "/api/v1/reports/{id}", "CatchResponseError('HTTP 500: internal error')", 1]],
    )  # fmt: skip
    stats = locust_stats(prefix)
    assert (stats["requests"], stats["failures"], stats["rps"], stats["p99_ms"]) == (
        100,
        6,
        10.0,
        80,
    )
    assert stats["endpoints"]["POST /api/v1/reports"]["p95_ms"] == 30
    assert stats["outage_failures"] == 5


def test_verdict_applies_the_profile_thresholds() -> None:
    clean = {"ok": True, "acknowledged": 5, "lost": 0, "duplicates": 0, "unexpected": 0,
             "wrong_kelurahan": 0, "altered": 0}  # fmt: skip
    smoke = PROFILES["smoke"]
    fine = {"requests": 1000, "failures": 5, "outage_failures": 0, "p99_ms": 100.0}
    assert verdict(smoke, fine, clean, kills=0) == []
    slow = {**fine, "p99_ms": smoke.max_p99_ms + 1}
    assert any("p99" in r for r in verdict(smoke, slow, clean, kills=0))
    outage = {**fine, "failures": 300, "outage_failures": 298}
    assert any("failure ratio" in r for r in verdict(smoke, outage, clean, kills=0))
    assert verdict(smoke, outage, clean, kills=1) == []  # connection errors of a kill excluded
    lost = {**clean, "lost": 1}
    assert verdict(smoke, fine, lost, kills=0) == ["audit: lost = 1"]
    ramp = PROFILES["ramp"]
    assert verdict(ramp, slow, clean, kills=0) == []  # ramp's thresholds mark its breaking point


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_has_thresholds(profile: str) -> None:
    p = PROFILES[profile]
    assert 0 < p.max_failure_ratio < 0.5
    assert p.max_p99_ms > 0
    assert p.duration_s > 0
    assert p.users >= 1
