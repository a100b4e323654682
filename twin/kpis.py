"""KPIs of complaint handling, judged against the SLA targets; shared by the twin and intake API.

Input is one row per report with hours since a common origin: ``received_h`` (at the CRM),
``coordinated_h`` and ``closed_h`` (NaN while not yet reached), plus any grouping columns
(``kelurahan``, ``kota``, ``category``). Times are judged over the reports that reached the
stage; shares "within" a limit count every report received (an open report is not within).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from twin.model.parameters import TargetParams

SLA_COORDINATION_H = 6.0
SLA_RESOLUTION_H = 168.0


def report_kpis(frame: pd.DataFrame, *, end_h: float | None = None) -> dict[str, float]:
    """Headline KPIs of a set of reports.

    Parameters
    ----------
    frame
        Columns ``received_h, coordinated_h, closed_h``.
    end_h
        End of the observation (for the backlog); default: the last event seen.

    Returns
    -------
    kpis
        ``reports, resolved, resolved_share, mean_coordination_h, share_coordinated_within_6h,
        mean_resolution_h, share_resolved_within_7d, p50/p90/p99_resolution_h, open_at_end``.
    """
    n = len(frame)
    coord = (frame["coordinated_h"] - frame["received_h"]).to_numpy(dtype=float)
    resol = (frame["closed_h"] - frame["received_h"]).to_numpy(dtype=float)
    done = np.isfinite(resol)
    coordinated = np.isfinite(coord)

    def pct(q: float) -> float:
        return float(np.percentile(resol[done], q)) if done.any() else float("nan")

    return {
        "reports": n,
        "resolved": int(done.sum()),
        "resolved_share": float(done.mean()) if n else float("nan"),
        "open_at_end": int(n - done.sum()),
        "mean_coordination_h": float(coord[coordinated].mean())
        if coordinated.any()
        else float("nan"),
        "share_coordinated_within_6h": float((coord <= SLA_COORDINATION_H).sum() / n)
        if n
        else float("nan"),
        "mean_resolution_h": float(resol[done].mean()) if done.any() else float("nan"),
        "share_resolved_within_7d": float((resol <= SLA_RESOLUTION_H).sum() / n)
        if n
        else float("nan"),
        "p50_resolution_h": pct(50),
        "p90_resolution_h": pct(90),
        "p99_resolution_h": pct(99),
    }


def judge_targets(kpis: dict[str, Any], targets: TargetParams) -> dict[str, dict[str, Any]]:
    """Which targets the KPIs meet: the regulation's two averages and the Dec 2016 benchmark."""
    checks = {
        "coordination_mean_6h": ("mean_coordination_h", targets.coordination_mean_h),
        "resolution_mean_7d": ("mean_resolution_h", targets.resolution_mean_h),
        "benchmark_resolution_9h": ("mean_resolution_h", targets.benchmark_resolution_h),
    }
    out = {}
    for name, (key, limit) in checks.items():
        value = kpis.get(key, float("nan"))
        out[name] = {
            "kpi": key,
            "value": value,
            "target_max": limit,
            "met": bool(np.isfinite(value) and value <= limit),
        }
    return out


def kpis_by(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """`report_kpis` for each value of `column` (one row per group), in grouped passes."""
    coord = frame["coordinated_h"] - frame["received_h"]
    resol = frame["closed_h"] - frame["received_h"]
    work = pd.DataFrame(
        {
            "key": frame[column],
            "coord": coord,
            "resol": resol,
            "coord_ok": coord <= SLA_COORDINATION_H,
            "resol_ok": resol <= SLA_RESOLUTION_H,
        }
    )
    g = work.groupby("key", observed=True, sort=True)
    n = g.size()
    resolved = g["resol"].count()
    out = pd.DataFrame(
        {
            "reports": n,
            "resolved": resolved,
            "resolved_share": resolved / n,
            "open_at_end": n - resolved,
            "mean_coordination_h": g["coord"].mean(),
            "share_coordinated_within_6h": g["coord_ok"].sum() / n,
            "mean_resolution_h": g["resol"].mean(),
            "share_resolved_within_7d": g["resol_ok"].sum() / n,
            "p50_resolution_h": g["resol"].quantile(0.5),
            "p90_resolution_h": g["resol"].quantile(0.9),
            "p99_resolution_h": g["resol"].quantile(0.99),
        }
    )
    return out.rename_axis(column)


def rank_kelurahan(per_kelurahan: pd.DataFrame, *, by: str = "mean_resolution_h") -> pd.DataFrame:
    """Add a ``rank`` column (1 = best: the fastest mean resolution; kelurahan with no
    resolved report rank last)."""
    ranked = per_kelurahan.copy()
    ranked["rank"] = ranked[by].rank(method="min", na_option="bottom").astype(int)
    return ranked.sort_values("rank")


def backlog_series(frame: pd.DataFrame, *, end_h: float, step_h: float = 1.0) -> pd.Series:
    """Reports received but not closed at each step (hours)."""
    grid = np.arange(0.0, end_h + step_h, step_h)
    received = np.sort(frame["received_h"].to_numpy(dtype=float))
    closed = np.sort(frame["closed_h"].to_numpy(dtype=float))
    closed = closed[np.isfinite(closed)]
    open_n = np.searchsorted(received, grid, side="right") - np.searchsorted(
        closed, grid, side="right"
    )
    return pd.Series(open_n, index=pd.Index(grid, name="hour"), name="backlog")
