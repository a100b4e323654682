"""Scenarios as data: variants made by replacing dotted fields, grids of them, shortened runs."""

from __future__ import annotations

import dataclasses
import itertools
from typing import TYPE_CHECKING, Any

from twin.errors import ScenarioError
from twin.model.scenario import Scenario, scenario_from_dict

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


def replace_field(scenario: Scenario, path: str, value: Any) -> Scenario:
    """A copy of `scenario` with the dotted field `path` (``crews.per_kelurahan``) set to `value`.

    The result is validated as a scenario file would be; an unknown field raises `ScenarioError`.
    """
    data = scenario_to_dict(scenario)
    node = data
    parts = path.split(".")
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            raise ScenarioError(
                f"field {path!r}: {'.'.join(parts[: i + 1])} is not a scenario field"
            )
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise ScenarioError(f"field {path!r} is not a scenario field")
    node[parts[-1]] = value
    name = data.pop("name")
    return scenario_from_dict(data, name=name)


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """Every field of `scenario` as plain data (``name`` included): what `scenario_from_dict` reads
    back, and what a run's provenance records."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(scenario).items()}


def check_days(days: object, where: str = "--days") -> int:
    """`days` if it is a whole number >= 1, else `ScenarioError` naming `where`."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ScenarioError(f"{where} must be a whole number >= 1, got {days!r}")
    return days


def check_staff_tables(scenarios: Iterable[Scenario], data_dir: str | Path | None) -> None:
    """Read every staff table the scenarios name against the city's kelurahan codes, before any
    run: a missing file, an unknown, missing or repeated code or a bad count is a
    `ScenarioError` naming the field (a run would otherwise stop half-way through a study)."""
    tables = sorted(
        {
            (field, table)
            for s in scenarios
            for field, table in (
                ("coordination.staff_table", s.coordination.staff_table),
                ("crews.staff_table", s.crews.staff_table),
            )
            if table
        }
    )
    if not tables:
        return
    from twin.city.datadir import resolve_data_dir
    from twin.city.kelurahan import load_kelurahan
    from twin.model.staffing import read_staff_table

    paths = resolve_data_dir(data_dir)
    codes = load_kelurahan(paths.require(paths.kelurahan))["kode_kemendagri"].astype(str)
    for field, table in tables:
        read_staff_table(table, field, codes.to_numpy(dtype=str))


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


def apply_point(base: Scenario, point: dict[str, Any]) -> Scenario:
    """`base` with every dotted field of `point` replaced (a grid point, a calibration candidate);
    a key naming several fields, comma-separated, gives each of them the value."""
    scenario = base
    for paths, value in point.items():
        for path in paths.split(","):
            scenario = replace_field(scenario, path, value)
    return scenario


def with_days(scenario: Scenario, days: int | None, *, where: str = "--days") -> Scenario:
    """The scenario with `days` simulated days (unchanged when None; later flood days dropped);
    `where` names the option or field the number came from in an error."""
    if days is None:
        return scenario
    check_days(days, where)
    flood = scenario.demand.flood  # flood days past a shortened run fall away with it
    flood = dataclasses.replace(flood, days=tuple(d for d in flood.days if d < days))
    return dataclasses.replace(
        scenario,
        run=dataclasses.replace(scenario.run, days=days),
        demand=dataclasses.replace(scenario.demand, flood=flood),
    )
