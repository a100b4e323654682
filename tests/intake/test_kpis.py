"""Public KPIs: per kelurahan and the ranking, computed with the twin's KPI code."""

from __future__ import annotations

import pytest

from tests.intake.conftest import KEL_A, KEL_B, POINT_B, Api
from tests.intake.test_officers import (
    claim,
    coordinator_post,
    jpeg_with_gps,
    post_report,
    resolve,
    stored,
)


def close_one(api: Api) -> str:
    """A KEL_A report coordinated, claimed and resolved; returns its id."""
    report_id = post_report(api)
    assert coordinator_post(api, report_id, "coordinate", api.coordinator).status_code == 200
    assert claim(api, report_id, api.officer).status_code == 200
    assert resolve(api, report_id, api.officer, jpeg_with_gps()).status_code == 200
    return report_id


def test_kelurahan_kpis(api: Api) -> None:
    empty = api.client.get(f"/api/v1/kpis/kelurahan/{KEL_A}")
    assert empty.status_code == 200, empty.text
    assert empty.json()["reports"] == 0
    assert empty.json()["mean_resolution_h"] is None  # no report: no data

    close_one(api)
    post_report(api)  # still open
    kpis = api.client.get(f"/api/v1/kpis/kelurahan/{KEL_A}").json()
    assert kpis["kelurahan_code"] == KEL_A
    assert (kpis["reports"], kpis["resolved"], kpis["open_at_end"]) == (2, 1, 1)
    assert kpis["resolved_share"] == 0.5
    assert 0.0 <= kpis["mean_resolution_h"] < 1.0
    assert 0.0 <= kpis["mean_coordination_h"] < 1.0
    assert kpis["share_resolved_within_7d"] == 0.5  # the open report is a miss
    assert kpis["censored_resolution_share"] == 0.5
    assert "reporter" not in str(kpis)


def test_unknown_kelurahan_is_404(api: Api) -> None:
    r = api.client.get("/api/v1/kpis/kelurahan/99.99.99.9999")
    assert r.status_code == 404
    assert "unknown kelurahan" in r.json()["detail"]


def test_ranking(api: Api) -> None:
    empty = api.client.get("/api/v1/kpis/ranking").json()
    assert (empty["count"], empty["best"], empty["worst"]) == (0, [], [])
    assert empty["total_kelurahan"] > 2

    close_one(api)
    post_report(api, POINT_B)  # KEL_B: nothing resolved, ranks last
    ranking = api.client.get("/api/v1/kpis/ranking").json()
    assert ranking["count"] == 2
    assert [k["kelurahan_code"] for k in ranking["best"]] == [KEL_A, KEL_B]
    assert [k["kelurahan_code"] for k in ranking["worst"]] == [KEL_B, KEL_A]
    best = ranking["best"][0]
    assert (best["rank"], best["reports"], best["resolved"]) == (1, 1, 1)
    assert best["kelurahan_name"] == "Satu"  # names beside codes
    assert best["kota"] == "Kota Sintetis"
    assert best["mean_resolution_h"] >= 0.0
    worst = ranking["worst"][0]  # open since before the other closed: a longer honest mean
    assert worst["mean_resolution_h"] > best["mean_resolution_h"]
    assert worst["censored_resolution_share"] == 1.0
    assert ranking["worst"][0]["rank"] == 2


def test_claim_from_menunggu_counts_as_coordination(api: Api) -> None:
    """Claiming a waiting report is the kelurahan's first answer: it is the coordination."""
    report_id = post_report(api)
    assert claim(api, report_id, api.officer).status_code == 200
    assert stored(api, report_id)["coordinated_at"] is not None
    kpis = api.client.get(f"/api/v1/kpis/kelurahan/{KEL_A}").json()
    assert kpis["share_coordinated_within_6h"] == 1.0
    assert kpis["mean_coordination_h"] is not None
    assert kpis["censored_coordination_share"] == 0.0


def test_intake_gives_the_twins_figures_for_the_twins_records(api: Api, synthetic_dir) -> None:  # type: ignore[no-untyped-def]
    """The twin's records stored in the intake's database: the endpoint's KPIs equal the twin's."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd
    import sqlalchemy as sa

    from intake.db import make_engine, reports
    from twin.city.assembly import load_city
    from twin.kpis import KPI_NAMES, report_kpis
    from twin.model.runner import run_scenario
    from twin.model.scenario import scenario_from_dict

    city = load_city(synthetic_dir, cache_dir=synthetic_dir.parent / "cache")
    scenario = scenario_from_dict(
        {"run": {"days": 3, "seed": 3, "follow_up_days": 2, "only_kelurahan": [KEL_A]},
         "demand": {"reports_per_day": 80.0}, "crews": {"per_kelurahan": 10},
         "coordination": {"staff_per_kelurahan": 6}},  # 80 h of desk work a day: 6 staff
        name="same-records",
    )  # fmt: skip
    r = run_scenario(city, scenario).reports
    assert r["closed_h"].isna().any()
    assert r["closed_h"].notna().any()
    origin = datetime.now(UTC) - timedelta(days=6)  # the follow-up ended a day ago

    def at(hours: pd.Series) -> list[datetime | None]:
        return [None if pd.isna(h) else origin + timedelta(hours=float(h)) for h in hours]

    created, coordinated, closed = at(r["received_h"]), at(r["coordinated_h"]), at(r["closed_h"])
    rows = [
        {"token": f"twin-{i}", "service_code": "garbage", "description": "", "lat": -6.195,
         "lon": 106.805, "kelurahan_code": KEL_A, "channel": "jaki",
         "status": "selesai" if closed[i] else "koordinasi" if coordinated[i] else "menunggu",
         "created_at": created[i], "updated_at": created[i],
         "coordinated_at": coordinated[i], "closed_at": closed[i]}
        for i in range(len(r))
    ]  # fmt: skip
    engine = make_engine(api.settings.database_url)
    with engine.begin() as conn:
        conn.execute(sa.insert(reports), rows)
    engine.dispose()
    got = api.client.get(f"/api/v1/kpis/kelurahan/{KEL_A}").json()
    end_h = (datetime.fromisoformat(got["as_of"]) - origin) / timedelta(hours=1)
    twin = report_kpis(r, end_h=end_h)  # the same records, observed until the same moment
    for name in KPI_NAMES:
        if pd.isna(twin[name]):  # a percentile not reached: null in JSON
            assert got[name] is None, name
        else:
            assert got[name] == pytest.approx(twin[name], rel=1e-6), name
    assert got["censored_resolution_share"] > 0  # open reports were part of the comparison


def test_a_kelurahan_with_few_reports_is_not_ranked(api: Api) -> None:
    """By default a kelurahan needs 20 reports to be ranked: a mean of two says nothing."""
    import dataclasses

    from fastapi.testclient import TestClient

    from intake.main import create_app

    close_one(api)
    post_report(api, POINT_B)
    default = dataclasses.replace(api.settings, ranking_min_reports=20)
    with TestClient(create_app(default)) as client:
        ranking = client.get("/api/v1/kpis/ranking").json()
    assert (ranking["count"], ranking["best"], ranking["worst"]) == (0, [], [])
