"""`twin bench ops` end to end on a small synthetic city (the real figures: README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.intake.test_browser import CHROMIUM

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no system Chromium")


def test_bench_ops_measures_on_a_small_city(tmp_path: Path) -> None:
    """`twin bench ops` end to end, small: the figures are measured, nothing is lost."""
    from intake.bench_ops import bench_ops
    from tests.conftest import write_city

    data = write_city(tmp_path / "data")
    results = bench_ops(
        reports_open=300, subscribers=5, rate=10, seconds=1, repeat=1, data_dir=str(data)
    )
    assert results["reports_posted"] == 10
    assert results["events_expected"] == 50
    assert results["events_lost"] == 0
    assert 0 < results["event_p99_s"] < 5
    assert 0 < results["ops_ready_s"] < 30
