"""Staffing sweeps: a grid over scenario fields, checked before any run, and the smallest staffing
per kelurahan that meets the chosen targets."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from twin.errors import ScenarioError
from twin.experiments.variants import apply_point, check_days, grid_points, with_days
from twin.model.scenario import load_scenario

if TYPE_CHECKING:
    from twin.model.scenario import Scenario

SLA_TARGETS = ("coordination_mean_6h", "resolution_mean_7d")


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

    def scenarios(self) -> list[Scenario]:
        """The scenario of every grid point, in the order of `points`."""
        return [apply_point(self.scenario, p) for p in self.points]


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
    if not isinstance(data["scenario"], str) or not data["scenario"]:
        raise ScenarioError(f"{path}: scenario: expected a file name, got {data['scenario']!r}")
    grid = data.get("grid", {})
    if not isinstance(grid, dict):
        raise ScenarioError(f"{path}: grid: expected a table of field = [values]")
    grid = {field: _tables_beside(path, field, values) for field, values in grid.items()}
    try:
        length = check_days(data["days"], "days") if "days" in data else None
        if days is not None:  # --days overrides the file's
            length = check_days(days, "--days")
        base = with_days(load_scenario(path.parent / data["scenario"]), length)
        points = grid_points(grid)
        for point in points:  # every grid point must be a valid scenario: refuse before running
            apply_point(base, point)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    replications = data.get("replications", 5)
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 2:
        raise ScenarioError(
            f"{path}: replications must be a whole number >= 2, got {replications!r}"
        )
    numeric = [
        f
        for f, values in grid.items()
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ]
    staffing = data.get(
        "staffing", "crews.per_kelurahan" if "crews.per_kelurahan" in grid else (numeric or [""])[0]
    )
    if not isinstance(staffing, str):
        raise ScenarioError(
            f'{path}: staffing: expected the name of a numeric grid field, e.g. "crews.per_kelurahan", got {staffing!r}'
        )
    if staffing not in grid or staffing not in numeric:
        raise ScenarioError(f"{path}: staffing: {staffing!r} must be a numeric field of the grid")
    targets = data.get("targets", list(SLA_TARGETS))
    known = {"coordination_mean_6h", "resolution_mean_7d", "benchmark_resolution_9h"}
    choose = f"choose from {', '.join(sorted(known))}"
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ScenarioError(
            f'{path}: targets: expected a list of target names, e.g. ["resolution_mean_7d"], '
            f"got {targets!r} ({choose})"
        )
    unknown_targets = [t for t in targets if t not in known]
    if not targets or unknown_targets:
        bad = f"{unknown_targets[0]!r} is not a target" if unknown_targets else "list at least one"
        raise ScenarioError(f"{path}: targets: {bad} ({choose})")
    return Sweep(path.stem, base, grid, replications, staffing, tuple(targets), points)


def _tables_beside(path: Path, field: str, values: Any) -> Any:
    """A grid's staff tables, like a scenario file's, are relative to the file naming them."""
    if not field.endswith("staff_table") or not isinstance(values, list):
        return values
    return [
        str((path.parent / v).resolve())
        if isinstance(v, str) and v and not Path(v).is_absolute()
        else v
        for v in values
    ]


def minimum_staffing(
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
