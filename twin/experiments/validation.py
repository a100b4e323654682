"""Published outcomes against the twin: validation and calibration of the period scenarios.

Only aggregates are published (data/jakarta/README.md). Each period scenario is judged on
the published KPIs it can be compared with, each computed the way the published one was: per-day
rates (so a shorter period, a notebook or CI, is judged fairly), the resolved share of the
period's cohort at the end of its follow-up, and the published mean "to completion", which is
the mean over the *resolved* reports (``mean_resolution_of_resolved_h``; the SLA verdicts use
the censoring-aware mean instead). Pass when the published value lies within the stated
tolerance of the simulated mean. `calibrate` fits a period's unpublished parameters (each with its assumed range)
to its published targets, on common random numbers, by a grid search.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from twin.city.datadir import SCENARIO_DIR
from twin.errors import ScenarioError
from twin.experiments.replications import Task
from twin.experiments.statistics import mean_ci
from twin.experiments.variants import apply_point, with_days
from twin.model.scenario import load_scenario

if TYPE_CHECKING:
    from twin.experiments.replications import Runner
    from twin.model.scenario import Scenario


@dataclass(frozen=True, slots=True)
class Target:
    """A published figure and how close the twin must come.

    Attributes
    ----------
    kpi
        The simulated KPI compared (a key of `twin.experiments.replications.HEADLINE_KPIS`).
    published
        The published value.
    tolerance
        Allowed distance: relative (0.1 = 10 %) when `relative`, else absolute.
    relative
        Whether `tolerance` is relative.
    source
        Where the figure is published.
    """

    kpi: str
    published: float
    tolerance: float
    relative: bool
    source: str

    def passes(self, simulated: float) -> bool:
        """Whether `simulated` is within tolerance of the published value."""
        if not math.isfinite(simulated):
            return False
        allowed = self.tolerance * abs(self.published) if self.relative else self.tolerance
        return abs(simulated - self.published) <= allowed


README = "data/jakarta/README.md"
PUBLISHED: dict[str, list[Target]] = {
    "jakarta-2016": [
        Target("reports_per_day", 932.3, 0.10, True, f"{README}: 28,901 reports in Dec 2016"),
        Target("resolved_share", 0.84, 0.05, False, f"{README}: 84 % finished"),
        Target(
            "mean_resolution_of_resolved_h", 9.0, 0.25, True, f"{README}: about 9 h to completion"
        ),
    ],
    "jakarta-2020": [
        Target("reports_per_day", 376.4, 0.10, True, f"{README}: 137,776 reports in 2020"),
        Target("resolved_share", 0.9985, 0.01, False, f"{README}: 137,574 resolved (99.85 %)"),
        Target(
            "mean_resolution_of_resolved_h", 40.2, 0.25, True, f"{README}: 40.2 h to resolution"
        ),
    ],
    "jakarta-2024": [
        Target("reports_per_day", 507.8, 0.10, True, f"{README}: 185,852 reports, 508 a day"),
        Target("peak_day_reports", 800.0, 0.20, True, f"{README}: 800 on the peak day"),
        Target("resolved_share", 0.968, 0.02, False, f"{README}: 96.8 % resolved"),
    ],
}

# Unpublished parameters each period may fit, with their assumed ranges (grid values). A key
# naming several fields, comma-separated, ties them: they take each value together.
_HANDOVERS = ",".join(
    f"agencies.{a}.handover.mean_min"
    for a in ("satpol_pp", "dishub", "distamhut", "bina_marga", "sda", "dlh")
)
CALIBRATION_GRID: dict[str, dict[str, list[Any]]] = {
    "jakarta-2016": {
        "coordination.agency_scale": [0.8, 1.0, 1.2],
        "coordination.patience_h": [3.0, 4.0, 5.0],
        "coordination.unanswered_share": [0.0, 0.02],
    },
    "jakarta-2020": {
        "coordination.agency_scale": [1.8, 2.0, 2.2],
        _HANDOVERS: [4320.0, 5760.0],
        "coordination.unanswered_share": [0.0],
    },
    "jakarta-2024": {
        "coordination.patience_h": [48.0, 60.0],
        "demand.daily_cv": [0.0, 0.05, 0.1],
        "coordination.unanswered_share": [0.0],
    },
}


def period_scenario(name: str, days: int | None = None, folder: Path | None = None) -> Scenario:
    """A period scenario of `folder` (default: the shipped ones; its calibrated version when one
    exists), optionally shortened."""
    folder = folder or SCENARIO_DIR
    path = folder / f"{name}-calibrated.toml"
    return with_days(load_scenario(path if path.is_file() else folder / f"{name}.toml"), days)


def validate(
    periods: list[str],
    replications: int,
    runner: Runner,
    *,
    days: int | None = None,
    folder: Path | None = None,
) -> pd.DataFrame:
    """Published against simulated (mean, 95 % CI) for every published KPI of every period."""
    unknown = [p for p in periods if p not in PUBLISHED]
    if unknown:
        raise ScenarioError(
            f"no published figures for {unknown[0]}; choose from {', '.join(PUBLISHED)}"
        )
    scenarios = {p: period_scenario(p, days, folder) for p in periods}
    tasks = [
        Task((p,), s, r, runner.data_dir) for p, s in scenarios.items() for r in range(replications)
    ]
    results = runner.run(tasks)
    rows = []
    for period in periods:
        rs = [r for r in results if r.key == (period,)]
        for target in PUBLISHED[period]:
            mean, lo, hi = mean_ci([r.kpis[target.kpi] for r in rs])
            tol = f"±{target.tolerance:.0%}" if target.relative else f"±{target.tolerance:g}"
            rows.append({
                "period": period, "scenario": scenarios[period].name, "kpi": target.kpi,
                "published": target.published, "simulated": mean, "ci_low": lo, "ci_high": hi,
                "tolerance": tol, "pass": target.passes(mean), "source": target.source,
            })  # fmt: skip
    return pd.DataFrame(rows)


def calibrate(
    path: Path, replications: int, runner: Runner, *, days: int | None = None
) -> dict[str, Any]:
    """Fit a period's unpublished parameters to its published targets (grid search, CRN).

    The loss is the sum over targets of the squared error in units of the target's tolerance;
    every grid point sees the same reports (replication r shares its streams), so differences
    between points are the parameters', not the dice's.
    """
    name = path.stem
    if name not in CALIBRATION_GRID:
        raise ScenarioError(
            f"{path}: no published targets for {name!r}; calibrate one of {', '.join(CALIBRATION_GRID)}"
        )
    base = with_days(load_scenario(path), days)
    grid = CALIBRATION_GRID[name]
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    scenarios = [apply_point(base, p) for p in points]
    tasks = [
        Task((i,), s, r, runner.data_dir)
        for i, s in enumerate(scenarios)
        for r in range(replications)
    ]
    results = runner.run(tasks)
    rows = []
    for i, point in enumerate(points):
        rs = [r for r in results if r.key == (i,)]
        loss = 0.0
        row: dict[str, Any] = dict(point)
        for target in PUBLISHED[name]:
            mean = mean_ci([r.kpis[target.kpi] for r in rs])[0]
            scale = (
                target.tolerance * abs(target.published) if target.relative else target.tolerance
            )
            loss += ((mean - target.published) / scale) ** 2
            row[target.kpi] = mean
        row["loss"] = loss
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("loss")
    best = {
        k: table.iloc[0][k].item() if hasattr(table.iloc[0][k], "item") else table.iloc[0][k]
        for k in grid
    }
    return {"table": table, "best": best, "loss": float(table.iloc[0]["loss"])}


def write_calibrated(source: Path, best: dict[str, Any], fit: pd.DataFrame, out: Path) -> Path:
    """Write the calibrated scenario `out` (base = `source`, plus the fitted values) and, beside it,
    the fit (`out` with ``.csv``). Never called on a shipped file unless the user named it."""
    import os

    out.parent.mkdir(parents=True, exist_ok=True)
    base = Path(os.path.relpath(source.resolve(), out.parent.resolve())).as_posix()
    lines = [
        f"# Calibrated by `twin calibrate {source.name}`: fitted values of the unpublished parameters",
        f"# (grid search on common random numbers; the fit is in {out.with_suffix('.csv').name}).",
        f"base = {json.dumps(base)}",
        f'description = "{source.stem}, calibrated to its published outcomes"',
        "",
    ]
    tables: dict[str, dict[str, Any]] = {}
    for paths, value in best.items():
        for path in paths.split(","):  # tied fields take the same value
            section, _, key = path.rpartition(".")
            tables.setdefault(section, {})[key] = value
    for section, values in tables.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(float(v))}" for k, v in values.items()]
        lines.append("")
    out.write_text("\n".join(lines), encoding="utf-8")
    fit.to_csv(out.with_suffix(".csv"), index=False)
    load_scenario(out)  # the written file must load
    return out
