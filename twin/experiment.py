"""Experiments: replications with confidence intervals, paired comparisons and staffing sweeps.

One run of a stochastic model proves nothing. Replication r of a scenario draws from the named
streams of (seed, r), so replications are independent of each other, while replication r of
*every* scenario sees the very same reports (common random numbers): differences between
scenarios are then paired, and their confidence intervals are much narrower than the two
scenarios' own.

Work is spread over a local process pool by default (each worker loads the city once; the
travel tables are memory-mapped and shared), or over a Dask cluster with ``dask_address``.
Results do not depend on where a replication ran.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from twin.errors import ScenarioError
from twin.scenario import Scenario, scenario_from_dict

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

HEADLINE_KPIS = (
    "mean_coordination_h",
    "mean_resolution_h",
    "share_coordinated_within_6h",
    "share_resolved_within_7d",
    "resolved_share",
    "p90_resolution_h",
    "crew_utilisation",
    "travel_km",
    "reports_per_day",
    "peak_day_reports",
)


@dataclass(frozen=True, slots=True)
class Task:
    """One replication of one scenario (picklable: it travels to pool workers and Dask)."""

    key: tuple[Any, ...]
    scenario: Scenario
    replication: int
    data_dir: str | None


@dataclass(slots=True)
class ReplicationResult:
    """What one replication reports back.

    Attributes
    ----------
    key
        The task's key (scenario label, grid point...).
    replication
        Replication number.
    kpis
        Headline KPIs of the run.
    kelurahan
        Per kelurahan: ``reports, mean_coordination_h, mean_resolution_h`` (index: code).
    """

    key: tuple[Any, ...]
    replication: int
    kpis: dict[str, float]
    kelurahan: pd.DataFrame


_CITY_CACHE: dict[tuple[str | None, str], Any] = {}


def run_task(task: Task) -> ReplicationResult:
    """Run one replication (in whatever process it lands; the city is loaded once per process)."""
    from twin.city import load_city
    from twin.runner import run_scenario

    speeds = task.scenario.city.speed_settings()
    cache_key = (task.data_dir, speeds.network_digest() + str(speeds.congestion_by_hour))
    if cache_key not in _CITY_CACHE:
        _CITY_CACHE[cache_key] = load_city(task.data_dir, speeds=speeds)
    result = run_scenario(_CITY_CACHE[cache_key], task.scenario, replication=task.replication)
    days = task.scenario.run.days
    per_day = np.bincount(
        (result.reports["received_h"] // 24).astype(int).clip(0, days - 1), minlength=days
    )
    summary = {
        **result.summary,
        "reports_per_day": per_day.mean(),
        "peak_day_reports": per_day.max(),
    }
    kpis = {k: float(summary[k]) for k in HEADLINE_KPIS}
    kelurahan = result.kelurahan[["reports", "mean_coordination_h", "mean_resolution_h"]].copy()
    return ReplicationResult(task.key, task.replication, kpis, kelurahan)


def run_tasks(
    tasks: Sequence[Task],
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[ReplicationResult]:
    """Run every task and return the results in task order.

    Parameters
    ----------
    tasks
        The replications to run.
    workers
        Local processes (default: one per CPU; 1 runs here, sequentially).
    dask_address
        A Dask scheduler (``tcp://host:8786``), or a ``distributed.LocalCluster`` / ``Client``
        object's address; when given, the work runs there instead.
    progress
        Called with 1 as each task finishes.
    """
    if dask_address is not None:
        return _run_on_dask(tasks, dask_address, progress)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) == 1:
        out = []
        for task in tasks:
            out.append(run_task(task))
            if progress is not None:
                progress(1)
        return out
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        results = []
        for result in pool.map(run_task, tasks):
            results.append(result)
            if progress is not None:
                progress(1)
        return results


def _run_on_dask(
    tasks: Sequence[Task], address: str, progress: Callable[[int], object] | None
) -> list[ReplicationResult]:
    from distributed import Client, as_completed  # type: ignore[attr-defined]

    with Client(address) as client:  # type: ignore[no-untyped-call]
        futures = client.map(run_task, list(tasks), pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        results: list[ReplicationResult | None] = [None] * len(futures)
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            results[index[future.key]] = future.result()
            if progress is not None:
                progress(1)
    return [r for r in results if r is not None]


# --- statistics ---------------------------------------------------------------------------------


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


# --- scenarios as data ---------------------------------------------------------------------------


def replace_field(scenario: Scenario, path: str, value: Any) -> Scenario:
    """A copy of `scenario` with the dotted field `path` (``crews.per_kelurahan``) set to `value`.

    The result is validated as a scenario file would be; an unknown field raises `ScenarioError`.
    """
    data = _as_dict(scenario)
    node = data
    parts = path.split(".")
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            raise ScenarioError(
                f"sweep field {path!r}: {'.'.join(parts[: i + 1])} is not a scenario field"
            )
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise ScenarioError(f"sweep field {path!r} is not a scenario field")
    node[parts[-1]] = value
    name = data.pop("name")
    return scenario_from_dict(data, name=name)


def _as_dict(scenario: Scenario) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(scenario).items()}


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (the cartesian product), in a stable order."""
    if not grid:
        raise ScenarioError("sweep grid is empty: list at least one field with values")
    for field_path, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ScenarioError(f"sweep grid {field_path!r}: give a non-empty list of values")
    names = list(grid)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(grid[n] for n in names))
    ]
