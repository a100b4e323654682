"""Published outcomes against the twin: in-sample, leave-one-period-out and never-fitted checks.

Only aggregates are published (data/jakarta/README.md); each period is one file of
``scenarios/periods/`` (`twin.experiments.periods`). Each KPI is computed the way the published
one was: per-day rates (so a shorter run is judged fairly), the resolved share of the period's
cohort at the end of its follow-up, and the published mean "to completion", the mean over the
*resolved* reports (``mean_resolution_of_resolved_h``).

Every simulated figure comes with a 95 % *predictive* interval: each of R runs draws the assumed
parameters from the calibration's accepted sample (`twin.experiments.inference`) and runs its own
replication, so the interval carries the parameters' uncertainty as well as the dice's.

Three checks:

in-sample
    A fitted period with its own accepted sample (without one: its scenario's values, so the
    interval holds the dice only): its targets were *fitted*. Passes when the published value
    lies within tolerance of the simulated mean (the exit code counts these).
leave-one-out
    A fitted period predicted from its published volume with the behaviour the *other* fitted
    periods' calibrations accepted (their accepted draws pooled, each period weighted equally;
    a field one of them does not fit takes that period's scenario value, so each draw is one
    period's behaviour, whole). Its targets are *predicted*.
never-fitted
    A period with ``fit = false``, predicted from every fitted period's accepted sample.

A predicted KPI is judged by whether the published value lies inside the predictive interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.city.datadir import SCENARIO_DIR
from twin.errors import ScenarioError
from twin.experiments.inference import resample
from twin.experiments.periods import Period, Target, load_periods
from twin.experiments.replications import Task
from twin.experiments.variants import (
    apply_point,
    check_days,
    check_staff_tables,
    scenario_to_dict,
)

if TYPE_CHECKING:
    from pathlib import Path

    from twin.experiments.replications import Runner
    from twin.model.scenario import Scenario

__all__ = [
    "PERIOD_DIR",
    "Target",
    "ValidationPlan",
    "load_periods",
    "load_posterior",
    "prepare",
    "run_validation",
    "validate",
]

PERIOD_DIR = SCENARIO_DIR / "periods"


def load_posterior(period: Period) -> pd.DataFrame | None:
    """The period's accepted parameter sample (the fitted fields and ``weight``), if it has one."""
    if period.posterior is None:
        return None
    table = pd.read_csv(period.posterior)
    missing = [c for c in [*period.calibrate, "weight"] if c not in table.columns]
    if missing:
        raise ScenarioError(f"{period.posterior}: column {missing[0]} is missing")
    if len(table) == 0 or not (table["weight"] > 0).any():
        raise ScenarioError(f"{period.posterior}: no accepted draw with a positive weight")
    return table[[*period.calibrate, "weight"]]


def field_value(scenario: Scenario, field: str) -> float:
    """The value of a dotted field (of the first, when several are tied by commas)."""
    node: Any = scenario_to_dict(scenario)
    for part in field.split(",")[0].split("."):
        node = node[part]
    return float(node)


def behaviour(
    periods: dict[str, Period], sources: list[str], posteriors: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    """The accepted draws of the `sources` periods as one sample, each period's weights summing
    to 1; every field any of them fits is filled, in a period that does not fit it, with that
    period's scenario value: each row is one period's behaviour, whole."""
    fields = list(dict.fromkeys(f for n in sources for f in periods[n].calibrate))
    parts = []
    for name in sources:
        part = posteriors[name].copy()
        part["weight"] = part["weight"] / part["weight"].sum()
        scenario = periods[name].base_scenario(1)
        for field in fields:
            if field not in part.columns:
                part[field] = field_value(scenario, field)
        parts.append(part[[*fields, "weight"]])
    return pd.concat(parts, ignore_index=True)


def plan(
    periods: dict[str, Period], chosen: list[str], runs: int, seed: int
) -> list[tuple[str, str, list[dict[str, float]]]]:
    """The checks to run: (period, check, parameter draws) for each chosen period.

    A period's own check draws from its own accepted sample (without one: its scenario's values,
    the dice only); a predicted one draws whole behaviours from the other fitted periods'.
    """
    posteriors = {
        n: post for n, p in periods.items() if p.fit and (post := load_posterior(p)) is not None
    }

    def records(sample: pd.DataFrame, fields: list[str]) -> list[dict[str, float]]:
        return [{f: float(row[f]) for f in fields} for _, row in sample.iterrows()]

    checks = []
    for name in chosen:
        period = periods[name]
        if period.fit:
            own = posteriors.get(name)
            draws = (
                records(resample(own, runs, seed), list(period.calibrate))
                if own is not None
                else [{} for _ in range(runs)]
            )
            checks.append((name, "in-sample", draws))
        others = [n for n in posteriors if n != name]
        if others:
            pooled = behaviour(periods, others, posteriors)
            fields = [c for c in pooled.columns if c != "weight"]
            check = "leave-one-out" if period.fit else "never-fitted"
            checks.append((name, check, records(resample(pooled, runs, seed), fields)))
    return checks


@dataclass(slots=True)
class ValidationPlan:
    """What `twin validate` will run, every input checked: the chosen periods, their checks
    (period, check, parameter draws) and one task per run."""

    periods: dict[str, Period]
    chosen: list[str]
    checks: list[tuple[str, str, list[dict[str, float]]]]
    tasks: list[Task]


def prepare(
    periods: dict[str, Period],
    chosen: list[str],
    runs: int,
    *,
    days: int | None = None,
    seed: int = 0,
    data_dir: str | None = None,
) -> ValidationPlan:
    """Check everything a validation needs and build its runs, before any output or run: the
    chosen periods exist, every one of them has a check, every run's scenario (each draw of the
    accepted parameters on the period's dates and volume) is valid, its staff tables match the
    city's kelurahan; a `ScenarioError` naming the file and field otherwise."""
    unknown = [p for p in chosen if p not in periods]
    if unknown:
        raise ScenarioError(f"no period file for {unknown[0]}; choose from {', '.join(periods)}")
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 2:
        raise ScenarioError(f"--replications must be >= 2 for an interval, got {runs}")
    if days is not None:
        check_days(days, "--days")
    bases = {name: periods[name].base_scenario(days) for name in chosen}
    checks = plan(periods, chosen, runs, seed)
    unchecked = [name for name in chosen if not any(c[0] == name for c in checks)]
    if unchecked:
        path = periods[unchecked[0]].path
        raise ScenarioError(
            f"{path}: nothing to validate: the period has fit = false (only predicted) and no "
            f"fitted period in {path.parent} has a posterior (accepted draws) to predict it from"
        )
    tasks = []
    for name, check, draws in checks:
        for i, draw in enumerate(draws):  # draw i runs replication i: parameters and dice vary
            try:
                scenario = apply_point(bases[name], draw)
            except ScenarioError as exc:
                raise ScenarioError(
                    f"{periods[name].path}: {check} draw {i} ({draw}): {exc}"
                ) from None
            tasks.append(Task((name, check, i), scenario, i, data_dir))
    for name, base in bases.items():  # a run would otherwise stop half-way through
        try:
            check_staff_tables([base], data_dir)
        except ScenarioError as exc:
            raise ScenarioError(f"{periods[name].path}: {exc}") from None
    return ValidationPlan(periods, chosen, checks, tasks)


def run_validation(prepared: ValidationPlan, runner: Runner) -> pd.DataFrame:
    """Run a prepared validation: published against simulated, with 95 % predictive intervals,
    for every check of every chosen period (one row per check and published figure)."""
    periods = prepared.periods
    results = runner.run(prepared.tasks)
    rows: list[dict[str, Any]] = []
    for name, check, _ in prepared.checks:
        kpis = pd.DataFrame([r.kpis for r in results if r.key[:2] == (name, check)])
        for target in periods[name].figures:
            if target.role == "volume" and check == "leave-one-out":
                continue  # the volume is an input: shown once, in-sample
            values = kpis[target.kpi].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            mean = float(values.mean()) if len(values) else float("nan")
            lo, hi = np.quantile(values, [0.025, 0.975]) if len(values) else (np.nan, np.nan)
            role = "volume" if target.role == "volume" else (
                "fitted" if check == "in-sample" else "predicted")  # fmt: skip
            tol = f"±{target.tolerance:.0%}" if target.relative else f"±{target.tolerance:g}"
            rows.append({
                "period": name, "check": check, "kpi": target.kpi, "role": role,
                "published": target.published, "simulated": mean, "pi_low": float(lo),
                "pi_high": float(hi), "tolerance": tol, "pass": target.passes(mean),
                "in_interval": bool(lo <= target.published <= hi), "source": target.source,
            })  # fmt: skip
    return pd.DataFrame(rows)


def validate(
    periods: dict[str, Period],
    chosen: list[str],
    runs: int,
    runner: Runner,
    *,
    days: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """`prepare`, then `run_validation`: published against simulated for every check of every
    chosen period."""
    prepared = prepare(periods, chosen, runs, days=days, seed=seed, data_dir=runner.data_dir)
    return run_validation(prepared, runner)


def verdict(table: pd.DataFrame) -> dict[str, int]:
    """Counts for the closing line: in-sample (fitted and volume) within tolerance, predicted
    inside their interval."""
    ins = table[table["role"] != "predicted"]
    pred = table[table["role"] == "predicted"]
    return {
        "in_sample": len(ins), "in_sample_pass": int(ins["pass"].sum()),
        "predicted": len(pred), "predicted_inside": int(pred["in_interval"].sum()),
    }  # fmt: skip


def periods_folder(folder: Path | None) -> dict[str, Period]:
    """The period files of `folder` (default the shipped ``scenarios/periods/``)."""
    return load_periods(folder or PERIOD_DIR)
