"""Statistics over replications: means with confidence intervals, paired differences on common
random numbers, rank robustness and SLA verdicts."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from twin.experiments.replications import HEADLINE_KPIS

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


def paired_differences(
    baseline: Sequence[ReplicationResult], other: Sequence[ReplicationResult]
) -> pd.DataFrame:
    """Other minus baseline, replication by replication (common random numbers), with 95 % CIs.

    ``significant`` is True where the interval excludes zero.
    """
    base = {r.replication: r for r in baseline}
    pairs = [(base[r.replication], r) for r in other if r.replication in base]
    rows = {}
    for kpi in HEADLINE_KPIS:
        mean, lo, hi = mean_ci([b_o[1].kpis[kpi] - b_o[0].kpis[kpi] for b_o in pairs])
        rows[kpi] = {
            "difference": mean,
            "ci_low": lo,
            "ci_high": hi,
            "significant": bool(math.isfinite(lo) and (lo > 0 or hi < 0)),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("kpi")


def rank_robustness(results: Sequence[ReplicationResult], *, top: int = 15) -> pd.DataFrame:
    """Each kelurahan's rank (1 = fastest mean resolution) over replications, with a 95 % CI.

    ``best_share`` / ``worst_share`` say in how many replications it was among the best / worst
    `top`; a member of the mean ranking's best or worst `top` is ``stable`` when that share is at
    least 80 %, else its place there is noise.
    """
    ranks = pd.DataFrame(
        {
            r.replication: r.kelurahan["mean_resolution_h"].rank(method="min", na_option="bottom")
            for r in results
        }
    )
    has_reports = pd.DataFrame({r.replication: r.kelurahan["reports"] > 0 for r in results}).all(
        axis=1
    )
    ranks = ranks[has_reports]
    n = len(ranks)
    out = pd.DataFrame(index=ranks.index)
    stats_rows = [mean_ci(row.tolist()) for _, row in ranks.iterrows()]
    out["rank_mean"] = [s[0] for s in stats_rows]
    out["rank_ci_low"] = [s[1] for s in stats_rows]
    out["rank_ci_high"] = [s[2] for s in stats_rows]
    out["best_share"] = (ranks <= top).mean(axis=1)
    out["worst_share"] = (ranks > n - top).mean(axis=1)
    out = out.sort_values("rank_mean")
    group = np.full(len(out), "", dtype=object)
    group[:top] = "best"
    group[len(out) - top :] = "worst"
    out["group"] = group
    share = np.where(out["group"] == "best", out["best_share"], out["worst_share"])
    out["stable"] = (out["group"] != "") & (share >= 0.8)
    return out


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
