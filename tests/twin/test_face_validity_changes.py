"""Face validity of dated changes inside one run, on a small but real configuration.

Gambir (six kelurahan of Jakarta Pusat, the real road network), PPSU crews pooled per kecamatan,
illegal parking all handed to Dinas Perhubungan (``dishub``), 12 measured days from Monday
2023-03-06; each change takes effect on 2023-03-12, day 6 of the period. Each claim is judged on
paired replications (the same seeds in both arms: common random numbers) with a 95 % confidence
interval, and what happened before the date must be identical, report by report.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from twin.experiments.statistics import mean_ci
from twin.model.runner import run_scenario
from twin.model.scenario import Scenario, scenario_from_dict

GAMBIR = [f"31.71.01.100{i}" for i in range(1, 7)]
DATE = "2023-03-12"
DAY_H = 6 * 24.0  # the change's 00:00, hours from the period's start
END_H = (12 + 6) * 24.0  # the end of the follow-up: a report still open counts until then
SEEDS = range(6)


def gambir(*changes: dict[str, Any]) -> Scenario:
    return scenario_from_dict(
        {
            "run": {"days": 12, "warm_up_days": 2, "follow_up_days": 6,
                    "start_date": "2023-03-06", "only_kelurahan": GAMBIR},
            "demand": {"reports_per_day": 200.0},
            "coordination": {"staff_per_kelurahan": 4, "closed_on_holidays": False},
            "crews": {"per_kelurahan": 30, "dispatch": "fifo", "pooling": "kecamatan"},
            "routing": {"illegal_parking": {"dishub": 1.0}},
            "agencies": {"dishub": {"teams_per_kota": 3}},
            "changes": [{"date": DATE, **c} for c in changes],
        },
        name="gambir",
    )  # fmt: skip


def paired_runs(city: Any, change: dict[str, Any]) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(without, with the change) records of each seed; asserts that the reports closed before
    the date are identical in both, column by column."""
    pairs = []
    for seed in SEEDS:
        a = run_scenario(city, gambir(), seed=seed).reports
        b = run_scenario(city, gambir(change), seed=seed).reports
        before = a["closed_h"] < DAY_H
        assert before.sum() > 100
        pd.testing.assert_frame_equal(a[before], b[before])
        pairs.append((a, b))
    return pairs


def diff_ci(pairs: list[tuple[pd.DataFrame, pd.DataFrame]], kpi: Any) -> tuple[float, float, float]:
    return mean_ci([kpi(b) - kpi(a) for a, b in pairs])


def parking_resolution_h(pick: Any) -> Any:
    """Mean resolution of illegal parking reports chosen by `pick` (an open one counts until
    the follow-up's end: a lower bound, which only weakens a claimed rise)."""

    def kpi(r: pd.DataFrame) -> float:
        rows = (r["category"] == "illegal_parking") & pick(r)
        assert rows.sum() > 50
        return float((r.loc[rows, "closed_h"].fillna(END_H) - r.loc[rows, "received_h"]).mean())

    return kpi


def test_switching_to_nearest_on_a_date_shortens_rides_after_it_only(real_city) -> None:  # type: ignore[no-untyped-def]
    """Under fifo a freed crew takes the oldest job anywhere in the kecamatan; under nearest it
    takes the nearest of the 32 oldest (and a new job the nearest idle crew). With a backlog,
    as here, the nearest waiting job is much closer than the oldest: rides shorten."""
    pairs = paired_runs(real_city, {"field": "crews.dispatch", "value": "nearest"})

    def ride_min_per_visit(r: pd.DataFrame) -> float:
        rows = (r["outcome"] == "ppsu") & (r["assigned_h"] >= DAY_H) & (r["visits"] > 0)
        return float(r.loc[rows, "ride_h"].sum() * 60 / r.loc[rows, "visits"].sum())

    mean, _, hi = diff_ci(pairs, ride_min_per_visit)
    assert hi < 0, (mean, hi)
    assert mean < -1.0, mean  # minutes per visit, from about 6.7 under fifo


def test_cutting_an_agencys_teams_on_a_date_slows_its_reports_after_it(real_city) -> None:  # type: ignore[no-untyped-def]
    pairs = paired_runs(
        real_city, {"field": "agencies.dishub.teams_per_kota", "value": 1}
    )  # 3 -> 1 team per kota: about 34 parking jobs a day for one team working 15 h
    after = parking_resolution_h(lambda r: r["received_h"] >= DAY_H)
    mean, lo, _ = diff_ci(pairs, after)
    assert lo > 0, (mean, lo)
    # the other agencies' and PPSU's reports do not see dishub's teams: the same records
    for a, b in pairs[:2]:
        others = a["agency"] != "dishub"
        pd.testing.assert_series_equal(a.loc[others, "closed_h"], b.loc[others, "closed_h"])


def test_a_longer_agency_handover_from_a_date_slows_its_reports_after_it_not_before(
    real_city,
) -> None:  # type: ignore[no-untyped-def]
    """The hand-over mean 240 -> 1440 minutes for reports coordinated from the date on."""
    pairs = paired_runs(real_city, {"field": "agencies.dishub.handover.mean_min", "value": 1440.0})
    mean, lo_after, _ = diff_ci(pairs, parking_resolution_h(lambda r: r["received_h"] >= DAY_H))
    assert lo_after > 4.0, (mean, lo_after)
    # coordinated before the date: the same hand-over; only second visits queue with later
    # reports, so their resolution moves by a small fraction of the rise after it at most
    before = parking_resolution_h(lambda r: r["coordinated_h"] < DAY_H)
    mean, lo, hi = diff_ci(pairs, before)
    assert max(abs(lo), abs(hi)) < 0.1 * lo_after, (mean, lo, hi, lo_after)
