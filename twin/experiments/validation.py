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
    A fitted period predicted from its published volume with the parameters the *other* fitted
    periods' calibrations accepted (pooled, each period weighted equally); a parameter only the
    held-out period fits is drawn from its plausible range. Its targets are *predicted*.
never-fitted
    A period with ``fit = false``, predicted from every fitted period's accepted sample.

A predicted KPI is judged by whether the published value lies inside the predictive interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.city.datadir import SCENARIO_DIR
from twin.errors import ScenarioError
from twin.experiments.inference import resample
from twin.experiments.periods import Period, Target, load_periods
from twin.experiments.replications import Task
from twin.experiments.variants import apply_point

if TYPE_CHECKING:
    from pathlib import Path

    from twin.experiments.assumptions import Assumption
    from twin.experiments.replications import Runner

__all__ = ["PERIOD_DIR", "Target", "load_periods", "load_posterior", "validate"]

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


def _pooled(posteriors: list[pd.DataFrame]) -> pd.DataFrame:
    """Accepted samples of several periods as one, each period's weights summing to 1."""
    parts = [p.assign(weight=p["weight"] / p["weight"].sum()) for p in posteriors]
    return pd.concat(parts, ignore_index=True)


def _draws(
    posterior: pd.DataFrame | None,
    fields: tuple[str, ...],
    ranges: dict[str, Assumption],
    n: int,
    seed: int,
) -> list[dict[str, float]]:
    """`n` parameter draws for `fields`: from `posterior` where it has the field, else uniform
    over the field's plausible range (nothing informs it)."""
    rng = np.random.default_rng(seed)
    sample = resample(posterior, n, seed) if posterior is not None else None
    draws: list[dict[str, float]] = [{} for _ in range(n)]
    for field in fields:
        if sample is not None and field in sample.columns and sample[field].notna().all():
            values = sample[field].to_numpy(dtype=float)
        else:
            a = ranges[field]
            values = rng.uniform(a.low, a.high, size=n)
        for draw, v in zip(draws, values, strict=True):
            draw[field] = float(v)
    return draws


def plan(
    periods: dict[str, Period],
    chosen: list[str],
    ranges: dict[str, Assumption],
    runs: int,
    seed: int,
) -> list[tuple[str, str, list[dict[str, float]]]]:
    """The checks to run: (period, check, parameter draws) for each chosen period."""
    posteriors = {n: load_posterior(p) for n, p in periods.items() if p.fit}
    fitted = {n: post for n, post in posteriors.items() if post is not None}
    checks = []
    for name in chosen:
        period = periods[name]
        if period.fit:
            own = posteriors[name]  # without one: the scenario's own values, the dice only
            draws = _draws(own, period.calibrate, ranges, runs, seed) if own is not None else None
            checks.append((name, "in-sample", draws or [{} for _ in range(runs)]))
            others = [post for n, post in fitted.items() if n != name]
            if others:
                fields = tuple(
                    dict.fromkeys(f for n in fitted if n != name for f in periods[n].calibrate)
                )
                fields = tuple(dict.fromkeys([*fields, *period.calibrate]))
                draws = _draws(_pooled(others), fields, ranges, runs, seed)
                checks.append((name, "leave-one-out", draws))
        else:
            fields = tuple(dict.fromkeys(f for n in fitted for f in periods[n].calibrate))
            pooled = _pooled(list(fitted.values())) if fitted else None
            checks.append((name, "never-fitted", _draws(pooled, fields, ranges, runs, seed)))
    return checks


def validate(
    periods: dict[str, Period],
    chosen: list[str],
    runs: int,
    runner: Runner,
    *,
    assumptions: list[Assumption],
    days: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Published against simulated, with 95 % predictive intervals, for every check of every
    chosen period (one row per check and published figure)."""
    unknown = [p for p in chosen if p not in periods]
    if unknown:
        raise ScenarioError(f"no period file for {unknown[0]}; choose from {', '.join(periods)}")
    if runs < 2:
        raise ScenarioError(f"--replications must be >= 2 for an interval, got {runs}")
    ranges = {a.field: a for a in assumptions}
    for period in periods.values():
        for field in period.calibrate:
            if field not in ranges:
                raise ScenarioError(
                    f"{period.path}: calibrate: {field} has no plausible range in the assumptions file"
                )
    checks = plan(periods, chosen, ranges, runs, seed)
    bases = {name: periods[name].base_scenario(days) for name in chosen}
    tasks = [
        Task((name, check, i), apply_point(bases[name], draw), i, runner.data_dir)
        for name, check, draws in checks
        for i, draw in enumerate(draws)  # draw i runs replication i: parameters and dice vary
    ]
    results = runner.run(tasks)
    rows: list[dict[str, Any]] = []
    for name, check, _ in checks:
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
