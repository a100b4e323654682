"""Public KPIs: per kelurahan and the ranking, computed with the twin's KPI code."""

from __future__ import annotations

from tests.intake.conftest import KEL_A, KEL_B, POINT_B, Api
from tests.intake.test_officers import claim, coordinator_post, jpeg_with_gps, post_report, resolve


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
    assert empty.json()["mean_resolution_h"] is None  # NaN -> null

    close_one(api)
    post_report(api)  # still open
    kpis = api.client.get(f"/api/v1/kpis/kelurahan/{KEL_A}").json()
    assert kpis["kelurahan_code"] == KEL_A
    assert (kpis["reports"], kpis["resolved"], kpis["open_at_end"]) == (2, 1, 1)
    assert kpis["resolved_share"] == 0.5
    assert 0.0 <= kpis["mean_resolution_h"] < 1.0
    assert 0.0 <= kpis["mean_coordination_h"] <= kpis["mean_resolution_h"]
    assert kpis["share_resolved_within_7d"] == 0.5
    assert kpis["p90_resolution_h"] == kpis["mean_resolution_h"]
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
    assert best["mean_resolution_h"] >= 0.0
    assert ranking["worst"][0]["mean_resolution_h"] is None
    assert ranking["worst"][0]["rank"] == 2
