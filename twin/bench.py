"""Shipped benchmarks: `twin bench city` times the city model against the project's targets.

Figures are medians of repeated runs (machines here are shared and noisy); the cold build runs
once, into a fresh temporary cache.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

CITY_TARGETS = {
    "cold_build_s": ("<=", 30.0),
    "warm_load_s": ("<=", 2.0),
    "depot_tables_s": ("<=", 1.0),
    "batched_lookups_per_s": (">=", 1_000_000.0),
    "single_lookup_us": ("<=", 5.0),
    "locate_points_per_s": (">=", 100_000.0),
}


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_city(
    data_dir: str | Path | None, *, repeat: int = 5, cold: bool = True
) -> dict[str, Any]:
    """Time cold build, warm load, depot tables, travel lookups and point location.

    Parameters
    ----------
    data_dir
        The Jakarta data directory.
    repeat
        Repetitions for each warm measurement (the median is reported).
    cold
        Also time a cold build into a fresh cache (about 25 s).
    """
    from twin.city.assembly import default_cache_dir, load_city
    from twin.city.travel import depot_tables

    results: dict[str, Any] = {}
    if cold:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            load_city(data_dir, cache_dir=Path(tmp))
            results["cold_build_s"] = time.perf_counter() - t
    load_city(data_dir, progress=True)  # make sure the default cache is warm
    results["warm_load_s"] = _median_s(
        lambda: load_city(data_dir, cache_dir=default_cache_dir()), repeat
    )
    city = load_city(data_dir)

    has_roads = city.kelurahan_has_roads
    depots = city.depots["node"].to_numpy()[has_roads]
    region = city.tables.region_of_node
    results["depot_tables_s"] = _median_s(
        lambda: depot_tables(city.network, depots, region), repeat
    )
    results["depot_tables_n"] = len(depots)

    rng = np.random.default_rng(0)
    n = 1_000_000
    nodes = np.flatnonzero(region >= 0)
    a = rng.choice(nodes, n)
    # b: a random node of a's own region, drawn by offsetting into that region's node list
    order = np.argsort(region, kind="stable")
    starts = np.r_[0, np.cumsum(city.tables.size)[:-1]]
    b = order[starts[region[a]] + (rng.random(n) * city.tables.size[region[a]]).astype(np.int64)]
    results["batched_lookups_per_s"] = n / _median_s(lambda: city.tables.node_time_s(a, b), repeat)
    lookup = city.tables.time_s
    pairs = list(zip(a[:20_000].tolist(), b[:20_000].tolist(), strict=True))

    def single() -> None:
        for i, j in pairs:
            lookup(i, j)

    results["single_lookup_us"] = _median_s(single, repeat) / len(pairs) * 1e6
    lon = rng.uniform(106.68, 106.98, 200_000)
    lat = rng.uniform(-6.37, -6.08, 200_000)
    results["locate_points_per_s"] = 200_000 / _median_s(
        lambda: city.kelurahan.locate_many(lon, lat), repeat
    )
    return results


def format_bench(results: dict[str, Any], targets: dict[str, tuple[str, float]]) -> str:
    """A table of figure, target and verdict."""
    lines = [f"{'measure':<24} {'median':>14} {'target':>14}  verdict"]
    for key, value in results.items():
        if key not in targets:
            continue
        op, goal = targets[key]
        ok = value <= goal if op == "<=" else value >= goal
        lines.append(
            f"{key:<24} {value:>14,.3f} {op + ' ' + f'{goal:,g}':>14}  {'ok' if ok else 'MISSED'}"
        )
    return "\n".join(lines)


RUN_TARGETS = {"whole_to_simulation": ("<=", 1.5)}

SIM_TARGETS = {
    "simulated_year_s": ("<=", 10.0),
    "ratio_to_bare_simpy": ("<=", 2.0),
    "peak_memory_gb": ("<=", 2.0),
}


def bare_simpy_loop(n_jobs: int, *, servers: int, seed: int = 0) -> tuple[float, float]:
    """Seconds for plain SimPy to push `n_jobs` requests through one ``simpy.Resource``.

    The yardstick of `bench_sim`: a generator per request, as in the textbook SimPy model.
    Returns wall-clock and CPU seconds (the CPU time is robust to a machine shared with others).
    """
    import simpy

    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, n_jobs).tolist()
    work = rng.exponential(0.9 * servers, n_jobs).tolist()
    env = simpy.Environment()
    resource = simpy.Resource(env, capacity=servers)

    def job(service: float) -> simpy.events.ProcessGenerator:
        with resource.request() as req:
            yield req
            yield env.timeout(service)

    def source() -> simpy.events.ProcessGenerator:
        for gap, service in zip(gaps, work, strict=True):
            yield env.timeout(gap)
            env.process(job(service))

    t, c = time.perf_counter(), time.process_time()
    env.process(source())
    env.run()
    return time.perf_counter() - t, time.process_time() - c


def bench_sim(
    data_dir: str | Path | None,
    *,
    days: int = 365,
    reports_per_day: float = 1000.0,
    repeat: int = 3,
) -> dict[str, Any]:
    """Time one simulated period of all Jakarta with travel on the road network, in this process.

    Every stage queues: kelurahan desks, PPSU crews and agency teams. The model and the bare
    SimPy yardstick, pushing as many resource requests as the model made, alternate `repeat`
    times; medians are reported.
    """
    import dataclasses
    import resource

    from twin.city.assembly import load_city
    from twin.model.runner import run_scenario
    from twin.model.scenario import Scenario

    city = load_city(data_dir, progress=True)
    base = Scenario(name="bench")
    scenario = dataclasses.replace(
        base,
        # no warm-up or follow-up: the bare loop gets exactly the jobs the twin simulates
        run=dataclasses.replace(base.run, days=days, warm_up_days=0, follow_up_days=0),
        demand=dataclasses.replace(base.demand, reports_per_day=reports_per_day),
    )
    model_s, bare_s, model_cpu, bare_cpu = [], [], [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        result = run_scenario(city, scenario)
        model_s.append(time.perf_counter() - t)
        model_cpu.append(time.process_time() - c)
        n = result.summary["reports"]
        r = result.reports
        # every resource request of the model: a desk pick-up, a team's visit (PPSU or agency)
        requests = int(r["picked_up_h"].notna().sum() + r["visits"].sum())
        wall, cpu = bare_simpy_loop(requests, servers=max(1, result.summary["crews"] // 267))
        bare_s.append(wall)
        bare_cpu.append(cpu)
    elapsed, bare = statistics.median(model_s), statistics.median(bare_s)
    return {
        "days": days,
        "reports": n,
        "ppsu_jobs": result.summary["outcomes"]["ppsu"],
        "agency_jobs": result.summary["outcomes"]["agency"],
        "resource_requests": requests,
        "simulated_year_s" if days == 365 else "simulated_period_s": elapsed,
        "bare_simpy_s": bare,
        "ratio_to_bare_simpy": elapsed / bare,
        "ratio_to_bare_simpy_cpu": statistics.median(model_cpu) / statistics.median(bare_cpu),
        "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


REPLICATION_TARGETS = {"parallel_s": ("<=", 120.0), "speedup": (">=", 1.7)}


def bench_replications(
    data_dir: str | Path | None,
    *,
    replications: int = 30,
    days: int = 30,
    workers: int | None = None,
) -> dict[str, Any]:
    """30 replications of a month of all Jakarta: one process, then the local pool; same results?"""
    import dataclasses
    import os

    from twin.city.assembly import load_city
    from twin.city.datadir import PROJECT_ROOT
    from twin.experiments.replications import Task, run_tasks
    from twin.model.scenario import load_scenario

    load_city(data_dir, progress=True)  # the cache is warm before anything is timed
    scenario = load_scenario(PROJECT_ROOT / "scenarios" / "jakarta-2016.toml")
    scenario = dataclasses.replace(scenario, run=dataclasses.replace(scenario.run, days=days))
    data = None if data_dir is None else str(data_dir)
    tasks = [Task(("bench",), scenario, r, data) for r in range(replications)]
    t = time.perf_counter()
    sequential = run_tasks(tasks, workers=1)
    sequential_s = time.perf_counter() - t
    workers = workers or os.cpu_count() or 1
    t = time.perf_counter()
    parallel = run_tasks(tasks, workers=workers)
    parallel_s = time.perf_counter() - t
    return {
        "replications": replications,
        "days": days,
        "workers": workers,
        "sequential_s": sequential_s,
        "parallel_s": parallel_s,
        "speedup": sequential_s / parallel_s,
        "identical_results": [r.kpis for r in sequential] == [r.kpis for r in parallel],
    }
