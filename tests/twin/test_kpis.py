"""The censoring-aware KPIs against scipy's Kaplan-Meier estimator (`scipy.stats.ecdf`)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from twin.kpis import KPI_NAMES, kpis_by, rank_kelurahan, report_kpis


def frame(n: int = 4000, seed: int = 1, groups: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    received = rng.uniform(0, 720, n)
    coord = received + rng.exponential(2, n)
    coord[rng.random(n) < 0.05] = np.nan
    closed = coord + rng.exponential(40, n)
    closed[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "received_h": received, "coordinated_h": coord, "closed_h": closed,
        "kelurahan": rng.integers(0, groups, n).astype(str),
    })  # fmt: skip


def test_kaplan_meier_matches_scipy() -> None:
    from scipy import stats

    f = frame()
    end, tau = 800.0, 500.0
    kpis = report_kpis(f, end_h=end, horizon_h=tau)
    closed = f["closed_h"].where(f["closed_h"] <= end)
    seen = closed.notna().to_numpy()
    duration = (closed.fillna(end) - f["received_h"]).to_numpy()
    sf = stats.ecdf(stats.CensoredData(uncensored=duration[seen], right=duration[~seen])).sf
    t, s = sf.quantiles, sf.probabilities  # the survival curve steps to s[i] at t[i]
    edges = np.clip(np.r_[0.0, t, tau], None, tau)
    area = float(np.sum(np.r_[1.0, s] * np.diff(edges)))  # exact area under the steps to tau
    assert kpis["mean_resolution_h"] == pytest.approx(area, rel=1e-9)
    for q in (50, 90, 99):  # first time the curve is at or below 1 - q; NaN if it never is
        reached = np.flatnonzero(s <= 1 - q / 100 + 1e-12)
        expected = t[reached[0]] if len(reached) else np.nan
        assert kpis[f"p{q}_resolution_h"] == pytest.approx(expected, nan_ok=True)
    assert np.isfinite(kpis["p50_resolution_h"])
    assert np.isnan(kpis["p99_resolution_h"])  # over 1 % never closes: not reached
    assert kpis["censored_resolution_share"] == pytest.approx(1 - seen.mean())
    # open reports pull the honest mean far above the mean over resolved reports only
    assert kpis["mean_resolution_h"] > kpis["mean_resolution_of_resolved_h"] + 20


def test_grouped_kpis_equal_one_group_at_a_time_and_are_fast() -> None:
    f = frame(n=60_000, groups=267)
    started = time.perf_counter()
    grouped = kpis_by(f, "kelurahan", end_h=800.0, horizon_h=600.0)
    elapsed = time.perf_counter() - started
    for key in ("0", "7", "266"):
        one = report_kpis(f[f["kelurahan"] == key], end_h=800.0, horizon_h=600.0)
        for name in KPI_NAMES:
            assert grouped.loc[key, name] == pytest.approx(one[name], nan_ok=True), name
    assert elapsed < 1.0  # 267 kelurahan from 60,000 reports: about 0.1 s here


def test_shares_count_open_reports_as_misses() -> None:
    f = pd.DataFrame({"received_h": [0.0, 0.0, 0.0, 0.0], "coordinated_h": [1.0, 1.0, np.nan, 1.0],
                      "closed_h": [10.0, 200.0, np.nan, np.nan]})  # fmt: skip
    k = report_kpis(f, end_h=400.0)
    assert k["share_resolved_within_7d"] == 0.25
    assert k["resolved_share"] == 0.5
    assert k["censored_coordination_share"] == 0.25
    assert k["mean_horizon_h"] == 400.0
    # S = 1 to 10 h, 0.75 to 200 h, then 0.5 to 400 h
    assert k["mean_resolution_h"] == pytest.approx(10 + 0.75 * 190 + 0.5 * 200)


def test_empty_set_has_counts_and_no_times() -> None:
    k = report_kpis(frame().iloc[:0])
    assert (k["reports"], k["resolved"]) == (0, 0)
    assert np.isnan(k["mean_resolution_h"])


def test_ranking_needs_a_minimum_of_reports() -> None:
    per = pd.DataFrame({"reports": [2, 50, 40], "mean_resolution_h": [1.0, 5.0, 9.0]},
                       index=["tiny", "a", "b"])  # fmt: skip
    ranked = rank_kelurahan(per, min_reports=10)
    assert ranked.index.tolist() == ["a", "b", "tiny"]
    assert ranked["rank"].tolist() == [1, 2, 0]
