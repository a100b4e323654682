"""Statistics over replications: means with confidence intervals, paired differences on common
random numbers, rank robustness and SLA verdicts."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from twin.errors import ScenarioError
from twin.experiments.replications import HEADLINE_KPIS
from twin.kpis import MIN_RANKED_REPORTS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from twin.experiments.replications import ReplicationResult
    from twin.model.scenario import Scenario


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the t-based confidence interval (lower, upper) of independent replications."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if len(x) < 2:
        return (mean, math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return (mean, mean - half, mean + half)


def summarise(results: Sequence[ReplicationResult]) -> pd.DataFrame:
    """Mean and 95 % CI of each headline KPI across replications (one row per KPI)."""
    rows = {}
    for kpi in HEADLINE_KPIS:
        mean, lo, hi = mean_ci([r.kpis[kpi] for r in results])
        rows[kpi] = {"mean": mean, "ci_low": lo, "ci_high": hi, "replications": len(results)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("kpi")


# Which way is better for each headline KPI (None: neither, the verdict says higher/lower).
LOWER_IS_BETTER = {
    "mean_coordination_h": True, "mean_resolution_h": True, "p90_resolution_h": True,
    "mean_resolution_of_resolved_h": True, "censored_resolution_share": True, "travel_km": True,
    "share_coordinated_within_6h": False, "share_resolved_within_7d": False,
    "resolved_share": False,
    "crew_utilisation": None, "reports_per_day": None, "peak_day_reports": None,
}  # fmt: skip

# The smallest difference a planner acts on, per KPI (``twin compare --threshold KPI=VALUE``):
# half an hour for times, one percentage point for shares.
PRACTICAL_THRESHOLDS = {
    "mean_coordination_h": 0.5, "mean_resolution_h": 0.5, "p90_resolution_h": 0.5,
    "mean_resolution_of_resolved_h": 0.5,
    "share_coordinated_within_6h": 0.01, "share_resolved_within_7d": 0.01,
    "resolved_share": 0.01, "censored_resolution_share": 0.01, "crew_utilisation": 0.01,
    "travel_km": 100.0, "reports_per_day": 1.0, "peak_day_reports": 1.0,
}  # fmt: skip


def practical_thresholds(overrides: dict[str, float] | None = None) -> dict[str, float]:
    """The default thresholds with `overrides`; an unknown KPI or a bad value is refused."""
    out = dict(PRACTICAL_THRESHOLDS)
    for kpi, value in (overrides or {}).items():
        if kpi not in out:
            raise ScenarioError(
                f"--threshold {kpi}: unknown KPI (choose from {', '.join(PRACTICAL_THRESHOLDS)})"
            )
        if not (math.isfinite(value) and value >= 0):
            raise ScenarioError(f"--threshold {kpi}: must be a number >= 0, got {value!r}")
        out[kpi] = float(value)
    return out


def verdict(
    lo: float, hi: float, diff: float, threshold: float, lower_is_better: bool | None
) -> str:
    """better / worse / equivalent / inconclusive from a paired difference's 95 % CI.

    Equivalent: the whole CI lies within +-threshold. Better or worse: the CI excludes zero and
    the estimated difference is at least the threshold. Anything else is inconclusive (more
    replications would tell). KPIs with no better direction get higher / lower instead.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "equivalent" if diff == 0 and lo == hi else "inconclusive"
    if -threshold <= lo and hi <= threshold:
        return "equivalent"
    if (lo > 0 or hi < 0) and abs(diff) >= threshold:
        if lower_is_better is None:
            return "higher" if diff > 0 else "lower"
        return "better" if (diff < 0) == lower_is_better else "worse"
    return "inconclusive"


def paired_differences(
    baseline: Sequence[ReplicationResult],
    other: Sequence[ReplicationResult],
    thresholds: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Other minus baseline, replication by replication (common random numbers), with 95 % CIs,
    the practical threshold and the verdict (`verdict`).

    ``significant`` is True where the interval excludes zero (statistics only; the verdict says
    whether the difference matters).
    """
    limits = practical_thresholds(thresholds)
    base = {r.replication: r for r in baseline}
    pairs = [(base[r.replication], r) for r in other if r.replication in base]
    rows = {}
    for kpi in HEADLINE_KPIS:
        diffs = [o.kpis[kpi] - b.kpis[kpi] for b, o in pairs]
        mean, lo, hi = mean_ci(diffs)
        if len(diffs) > 1 and np.ptp([d for d in diffs if math.isfinite(d)] or [0]) == 0:
            lo = hi = mean  # identical differences: the interval has width 0
        rows[kpi] = {
            "difference": mean,
            "ci_low": lo,
            "ci_high": hi,
            "threshold": limits[kpi],
            "significant": bool(math.isfinite(lo) and (lo > 0 or hi < 0)),
            "verdict": verdict(lo, hi, mean, limits[kpi], LOWER_IS_BETTER[kpi]),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("kpi")


def rank_robustness(
    results: Sequence[ReplicationResult], *, top: int = 15, min_reports: int = MIN_RANKED_REPORTS
) -> pd.DataFrame:
    """Each kelurahan's rank (1 = shortest mean resolution) over replications, with its interval.

    Only kelurahan with at least `min_reports` reports per replication on average are ranked
    (each replication ranks them 1..n among themselves). ``rank_low`` / ``rank_high`` are the
    2.5 % and 97.5 % quantiles of the replications' ranks (so within 1..n). ``best_share`` /
    ``worst_share`` say in how many replications it was among the best / worst `top`. The rule:
    a member of the best (worst) `top` by mean rank is ``stable`` when it was there in at least
    80 % of the replications; otherwise its place there is noise.
    """
    reports = pd.DataFrame({r.replication: r.kelurahan["reports"] for r in results})
    eligible = reports.fillna(0).mean(axis=1) >= min_reports
    ranks = pd.DataFrame({
        r.replication: r.kelurahan.loc[eligible[eligible].index, "mean_resolution_h"].rank(
            method="min", na_option="bottom"
        )
        for r in results
    })  # fmt: skip
    n = len(ranks)
    out = pd.DataFrame(index=ranks.index)
    first = results[0].kelurahan
    for column in ("kelurahan_name", "kota"):
        if column in first:
            out[column] = first.loc[ranks.index, column]
    out["reports_mean"] = reports.loc[ranks.index].mean(axis=1)
    out["rank_mean"] = ranks.mean(axis=1)
    out["rank_low"] = ranks.quantile(0.025, axis=1, interpolation="lower")
    out["rank_high"] = ranks.quantile(0.975, axis=1, interpolation="higher")
    out["best_share"] = (ranks <= top).mean(axis=1)
    out["worst_share"] = (ranks > n - top).mean(axis=1)
    out = out.sort_values("rank_mean")
    group = np.full(len(out), "", dtype=object)
    group[:top] = "best"
    group[len(out) - top :] = "worst"
    out["group"] = group
    share = np.where(out["group"] == "best", out["best_share"], out["worst_share"])
    out["stable"] = (out["group"] != "") & (share >= 0.8)
    out.attrs["ranked"] = n
    return out.rename_axis("kelurahan_code")


def verdicts(summary: pd.DataFrame, scenario: Scenario) -> dict[str, bool]:
    """Which SLA targets a scenario's replication means meet."""
    t = scenario.targets
    coord = float(summary.loc["mean_coordination_h", "mean"])  # type: ignore[arg-type]
    resol = float(summary.loc["mean_resolution_h", "mean"])  # type: ignore[arg-type]
    return {
        "coordination_mean_6h": bool(coord <= t.coordination_mean_h),
        "resolution_mean_7d": bool(resol <= t.resolution_mean_h),
        "benchmark_resolution_9h": bool(resol <= t.benchmark_resolution_h),
    }
