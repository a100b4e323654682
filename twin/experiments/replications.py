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

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from twin.errors import ScenarioError
from twin.model.scenario import Scenario

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

T = TypeVar("T")
R = TypeVar("R")

HEADLINE_KPIS = (
    "mean_coordination_h",
    "mean_resolution_h",
    "share_coordinated_within_6h",
    "share_resolved_within_7d",
    "resolved_share",
    "censored_resolution_share",
    "mean_resolution_of_resolved_h",
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
        Per kelurahan: ``kelurahan_name, kota, reports, mean_coordination_h,
        mean_resolution_h`` (index: code).
    """

    key: tuple[Any, ...]
    replication: int
    kpis: dict[str, float]
    kelurahan: pd.DataFrame


_CITY_CACHE: dict[tuple[str | None, str], Any] = {}


def cached_city(scenario: Scenario, data_dir: str | None) -> Any:
    """The city with `scenario`'s speeds, loaded once per process."""
    from twin.city.assembly import load_city

    speeds = scenario.city.speed_settings()
    cache_key = (data_dir, speeds.network_digest() + str(speeds.congestion_by_hour))
    if cache_key not in _CITY_CACHE:
        _CITY_CACHE[cache_key] = load_city(data_dir, speeds=speeds)
    return _CITY_CACHE[cache_key]


def run_task(task: Task) -> ReplicationResult:
    """Run one replication (in whatever process it lands; the city is loaded once per process)."""
    from twin.model.runner import run_scenario

    city = cached_city(task.scenario, task.data_dir)
    result = run_scenario(city, task.scenario, replication=task.replication)
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
    kelurahan = result.kelurahan[
        ["kelurahan_name", "kota", "reports", "mean_coordination_h", "mean_resolution_h"]
    ].copy()
    return ReplicationResult(task.key, task.replication, kpis, kelurahan)


def run_tasks(
    tasks: Sequence[Task],
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[ReplicationResult]:
    """Run every replication and return the results in task order (see `run_everywhere`)."""
    return run_everywhere(
        run_task, tasks, workers=workers, dask_address=dask_address, progress=progress
    )


def run_everywhere(
    function: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[R]:
    """`function` of every task, in task order: here, on a local process pool, or on Dask.

    Parameters
    ----------
    function
        A module-level function (it travels to pool workers and Dask by name).
    tasks
        Its arguments, one per call (picklable).
    workers
        Local processes (default: one per CPU; 1 runs here, sequentially).
    dask_address
        A Dask scheduler (``tcp://host:8786``), or a ``distributed.LocalCluster`` / ``Client``
        object's address; when given, the work runs there instead.
    progress
        Called with 1 as each task finishes.
    """
    if dask_address is not None:
        return _run_on_dask(function, tasks, dask_address, progress)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) == 1:
        out = []
        for task in tasks:
            out.append(function(task))
            if progress is not None:
                progress(1)
        return out
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        results = []
        for result in pool.map(function, tasks):
            results.append(result)
            if progress is not None:
                progress(1)
        return results


def _run_on_dask(
    function: Callable[[T], R],
    tasks: Sequence[T],
    address: str,
    progress: Callable[[int], object] | None,
) -> list[R]:
    from distributed import Client, as_completed  # type: ignore[attr-defined]

    with Client(address) as client:  # type: ignore[no-untyped-call]
        futures = client.map(function, list(tasks), pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        results: list[R | None] = [None] * len(futures)
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            results[index[future.key]] = future.result()
            if progress is not None:
                progress(1)
    return [r for r in results if r is not None]


@dataclass(slots=True)
class Runner:
    """Where and how replications run.

    Attributes
    ----------
    data_dir
        The Jakarta data directory (None: the usual resolution order).
    workers
        Local processes (None: one per CPU).
    dask_address
        A Dask scheduler address, to run there instead.
    progress
        A callback factory: given the number of tasks, returns a per-task callback.
    """

    data_dir: str | None = None
    workers: int | None = None
    dask_address: str | None = None
    progress: Callable[[int], Callable[[int], object]] | None = None

    def run(self, tasks: list[Task]) -> list[ReplicationResult]:
        """Run the tasks here or on Dask."""
        tick = self.progress(len(tasks)) if self.progress else None
        return run_tasks(tasks, workers=self.workers, dask_address=self.dask_address, progress=tick)


def check_replications(replications: int) -> None:
    if replications < 2:
        raise ScenarioError(
            f"--replications must be >= 2 for a confidence interval, got {replications}"
        )
