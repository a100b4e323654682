"""The planners' studies behind `twin run --replications`, `twin compare` and `twin sweep`.

Each study builds its tasks, refuses bad input before any run starts, runs the replications
(`twin.experiment.run_tasks`), and writes tables, plots and one self-contained HTML report.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from twin import experiment as ex
from twin import experiment_report as rep
from twin.errors import ScenarioError
from twin.scenario import load_scenario

if TYPE_CHECKING:
    from collections.abc import Callable

    from twin.scenario import Scenario

SLA_TARGETS = ("coordination_mean_6h", "resolution_mean_7d")


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

    def run(self, tasks: list[ex.Task]) -> list[ex.ReplicationResult]:
        """Run the tasks here or on Dask."""
        tick = self.progress(len(tasks)) if self.progress else None
        return ex.run_tasks(
            tasks, workers=self.workers, dask_address=self.dask_address, progress=tick
        )


def with_days(scenario: Scenario, days: int | None) -> Scenario:
    """The scenario with `days` simulated days (unchanged when None; later flood days dropped)."""
    if days is None:
        return scenario
    if days < 1:
        raise ScenarioError(f"--days must be >= 1, got {days}")
    flood = scenario.demand.flood  # flood days past a shortened run fall away with it
    flood = dataclasses.replace(flood, days=tuple(d for d in flood.days if d < days))
    return dataclasses.replace(
        scenario,
        run=dataclasses.replace(scenario.run, days=days),
        demand=dataclasses.replace(scenario.demand, flood=flood),
    )


def _check_replications(replications: int) -> None:
    if replications < 2:
        raise ScenarioError(
            f"--replications must be >= 2 for a confidence interval, got {replications}"
        )


def _targets(scenario: Scenario) -> dict[str, float]:
    return dataclasses.asdict(scenario.targets)


def replicate(scenario: Scenario, replications: int, runner: Runner, out: Path) -> dict[str, Any]:
    """R independent replications of one scenario: KPI means with 95 % CIs and rank robustness."""
    _check_replications(replications)
    results = runner.run(
        [ex.Task((scenario.name,), scenario, r, runner.data_dir) for r in range(replications)]
    )
    out.mkdir(parents=True, exist_ok=True)
    summary = ex.summarise(results)
    ranking = ex.rank_robustness(results)
    per_rep = pd.DataFrame([{"replication": r.replication, **r.kpis} for r in results]).set_index(
        "replication"
    )
    summary.to_csv(out / "summary_ci.csv")
    per_rep.to_csv(out / "replications.csv")
    ranking.to_csv(out / "ranking_robustness.csv")
    verdict = ex.verdicts(summary, scenario)
    (out / "summary_ci.json").write_text(
        json.dumps(
            {
                "scenario": scenario.name,
                "replications": replications,
                "targets": verdict,
                "kpis": summary.to_dict(orient="index"),
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    plot = rep.plot_scenarios({scenario.name: summary}, _targets(scenario), out / "kpis_ci.png")
    rep.write_html(
        out / "report.html",
        f"{scenario.name}: {replications} replications",
        [
            ("KPIs: mean and 95 % confidence interval", summary),
            (
                "Targets met (by the replication means)",
                pd.DataFrame([verdict], index=[scenario.name]),
            ),
            ("Plots", plot),
            (
                "Kelurahan ranking: best and worst 15 with rank intervals",
                ranking[ranking["group"] != ""],
            ),
        ],
        note="Replications share nothing but the scenario: each draws its own random streams.",
    )
    return {"summary": summary, "ranking": ranking, "verdicts": verdict}


def compare(
    scenarios: list[Scenario], replications: int, runner: Runner, out: Path
) -> dict[str, Any]:
    """Paired comparison on common random numbers: every scenario against the first."""
    _check_replications(replications)
    if len(scenarios) < 2:
        raise ScenarioError("twin compare needs at least two scenario files")
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise ScenarioError(f"scenario names must differ to be compared: {', '.join(names)}")
    tasks = [
        ex.Task((s.name,), s, r, runner.data_dir) for s in scenarios for r in range(replications)
    ]
    results = runner.run(tasks)
    by_name = {n: [r for r in results if r.key == (n,)] for n in names}
    summaries = {n: ex.summarise(rs) for n, rs in by_name.items()}
    verdict_rows = {s.name: ex.verdicts(summaries[s.name], s) for s in scenarios}
    verdicts = pd.DataFrame.from_dict(verdict_rows, orient="index")
    means = pd.DataFrame({n: summaries[n]["mean"] for n in names}).T
    verdicts["mean_resolution_h"] = means["mean_resolution_h"]
    verdicts["mean_coordination_h"] = means["mean_coordination_h"]
    best = means["mean_resolution_h"].idxmin()
    diffs = {n: ex.paired_differences(by_name[names[0]], by_name[n]) for n in names[1:]}
    out.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, Any]] = [
        ("Verdicts (targets met by the replication means)", verdicts)
    ]
    lines = [f"Best mean resolution: {best}."]
    for n, d in diffs.items():
        d.to_csv(out / f"difference_{n}_vs_{names[0]}.csv")
        sig = bool(d.loc["mean_resolution_h", "significant"])
        delta = float(d.loc["mean_resolution_h", "difference"])  # type: ignore[arg-type]
        lines.append(
            f"{n} - {names[0]}: mean resolution {delta:+.2f} h "
            f"({'significant' if sig else 'not significant'} at 95 %)."
        )
        sections.append((f"Paired differences: {n} minus {names[0]} (95 % CI)", d))
    verdicts.to_csv(out / "verdicts.csv")
    for n, s in summaries.items():
        s.to_csv(out / f"summary_{n}.csv")
    plot = rep.plot_scenarios(summaries, _targets(scenarios[0]), out / "compare.png")
    sections[1:1] = [("Conclusion", " ".join(lines)), ("KPIs side by side", plot)]
    rep.write_html(out / "report.html", f"Comparison of {', '.join(names)}", sections,
                   note=f"{replications} replications each; replication r of every scenario sees the same reports.")  # fmt: skip
    return {"verdicts": verdicts, "differences": diffs, "best": best, "conclusion": " ".join(lines)}


@dataclass(slots=True)
class Sweep:
    """A sweep file: a base scenario, a grid over its fields, and what counts as meeting.

    Attributes
    ----------
    name
        The sweep's name (its file stem).
    scenario
        The base scenario.
    grid
        Dotted field -> values, e.g. ``{"crews.per_kelurahan": [10, 30, 50, 70]}``.
    replications
        Replications per grid point.
    staffing
        The grid field on the x axis of the staffing curve (default: the first numeric one).
    targets
        Targets a kelurahan must meet (``coordination_mean_6h``, ``resolution_mean_7d``,
        ``benchmark_resolution_9h``).
    """

    name: str
    scenario: Scenario
    grid: dict[str, list[Any]]
    replications: int = 5
    staffing: str = ""
    targets: tuple[str, ...] = SLA_TARGETS
    points: list[dict[str, Any]] = field(default_factory=list)


SWEEP_KEYS = {"scenario", "grid", "replications", "days", "staffing", "targets"}


def load_sweep(path: Path, days: int | None = None) -> Sweep:
    """Read and check a sweep file; every grid point is validated before anything runs."""
    if not path.is_file():
        raise ScenarioError(f"{path}: sweep file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - SWEEP_KEYS)
    if unknown:
        raise ScenarioError(
            f"{path}: {unknown[0]}: unknown field (known: {', '.join(sorted(SWEEP_KEYS))})"
        )
    if "scenario" not in data:
        raise ScenarioError(f"{path}: scenario: name the base scenario file")
    grid = data.get("grid", {})
    if not isinstance(grid, dict):
        raise ScenarioError(f"{path}: grid: expected a table of field = [values]")
    try:
        base = with_days(
            load_scenario(path.parent / str(data["scenario"])),
            data.get("days", days) if days is None else days,
        )
        points = ex.grid_points(grid)
        for point in points:  # every grid point must be a valid scenario: refuse before running
            _apply(base, point)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    replications = data.get("replications", 5)
    if not isinstance(replications, int) or replications < 2:
        raise ScenarioError(
            f"{path}: replications must be a whole number >= 2, got {replications!r}"
        )
    numeric = [f for f, values in grid.items() if all(isinstance(v, int | float) for v in values)]
    staffing = data.get(
        "staffing", "crews.per_kelurahan" if "crews.per_kelurahan" in grid else (numeric or [""])[0]
    )
    if staffing not in grid or staffing not in numeric:
        raise ScenarioError(f"{path}: staffing: {staffing!r} must be a numeric field of the grid")
    targets = tuple(data.get("targets", SLA_TARGETS))
    known = {"coordination_mean_6h", "resolution_mean_7d", "benchmark_resolution_9h"}
    if not targets or not set(targets) <= known:
        raise ScenarioError(f"{path}: targets: choose from {', '.join(sorted(known))}")
    return Sweep(path.stem, base, grid, replications, staffing, targets, points)


def _apply(base: Scenario, point: dict[str, Any]) -> Scenario:
    scenario = base
    for path, value in point.items():
        scenario = ex.replace_field(scenario, path, value)
    return scenario


def run_sweep(sweep: Sweep, runner: Runner, out: Path, city: City | None = None) -> dict[str, Any]:
    """Run the grid, then tabulate, draw the staffing curve and find each kelurahan's minimum."""
    scenarios = [_apply(sweep.scenario, p) for p in sweep.points]
    tasks = [
        ex.Task((i,), s, r, runner.data_dir)
        for i, s in enumerate(scenarios)
        for r in range(sweep.replications)
    ]
    results = runner.run(tasks)
    rows = []
    kel_means = {}
    for i, point in enumerate(sweep.points):
        rs = [r for r in results if r.key == (i,)]
        summary = ex.summarise(rs)
        row: dict[str, Any] = dict(point)
        for kpi in summary.index:
            row[kpi] = summary.at[kpi, "mean"]
            row[f"{kpi}_ci_low"] = summary.at[kpi, "ci_low"]
            row[f"{kpi}_ci_high"] = summary.at[kpi, "ci_high"]
        row.update({f"meets_{k}": v for k, v in ex.verdicts(summary, scenarios[i]).items()})
        rows.append(row)
        kel_means[i] = pd.concat([r.kelurahan for r in rs]).groupby(level=0).mean()
    table = pd.DataFrame(rows)
    minimum = _minimum_staffing(sweep, scenarios, kel_means)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "sweep.csv", index=False)
    minimum.to_csv(out / "minimum_staffing.csv")
    series = [f for f in sweep.grid if f != sweep.staffing]
    curve = rep.plot_staffing_curve(table, sweep.staffing, series, out / "staffing_curve.png")
    sections: list[tuple[str, Any]] = [
        ("Grid: KPI means with 95 % CIs", table.set_index(list(sweep.grid))),
        ("Staffing curve", curve),
        (
            f"Smallest {sweep.staffing} per kelurahan meeting {', '.join(sweep.targets)}",
            minimum.describe().T,
        ),
    ]
    if city is not None:
        best = minimum.min(axis=1)  # under the best of the other grid settings
        sections.append(
            (
                "Map",
                rep.plot_min_staffing_map(
                    city, best, sweep.staffing, out / "minimum_staffing_map.png"
                ),
            )
        )
    sections.append(("Per kelurahan", minimum))
    rep.write_html(out / "report.html", f"Sweep {sweep.name}", sections,
                   note=f"{sweep.replications} replications per grid point, common random numbers across the grid.")  # fmt: skip
    return {"table": table, "minimum": minimum}


def _minimum_staffing(
    sweep: Sweep, scenarios: list[Scenario], kel_means: dict[int, pd.DataFrame]
) -> pd.DataFrame:
    """Per kelurahan (and per other grid combination), the smallest staffing meeting the targets."""
    limits = {
        "coordination_mean_6h": ("mean_coordination_h", "coordination_mean_h"),
        "resolution_mean_7d": ("mean_resolution_h", "resolution_mean_h"),
        "benchmark_resolution_9h": ("mean_resolution_h", "benchmark_resolution_h"),
    }
    others = [f for f in sweep.grid if f != sweep.staffing]
    columns: dict[str, pd.Series] = {}
    for i, point in enumerate(sweep.points):
        means = kel_means[i]
        ok = pd.Series(True, index=means.index)
        for target in sweep.targets:
            kpi, limit = limits[target]
            ok &= means[kpi].fillna(float("inf")) <= getattr(scenarios[i].targets, limit)
        label = ", ".join(f"{f}={point[f]}" for f in others) or sweep.staffing
        value = pd.Series(point[sweep.staffing], index=means.index, dtype=float).where(ok)
        columns[label] = (
            value
            if label not in columns
            else pd.concat([columns[label], value], axis=1).min(axis=1)
        )
    return pd.DataFrame(columns).rename_axis("kelurahan_code")


if TYPE_CHECKING:
    from twin.city import City
