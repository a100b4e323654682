"""Staffing per kelurahan: desk staff and PPSU crews, from a scenario rule or a CSV table.

A table is a CSV with columns ``kelurahan_code,staff`` naming every kelurahan of the city once;
an unknown, missing or repeated code, or a count that is not a whole number >= 0, stops the run
with one line naming the scenario field.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.errors import ScenarioError
from twin.model.parameters import MAX_STAFF

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from twin.city.assembly import City
    from twin.model.scenario import Scenario


def read_staff_table(path: str, field: str, codes: NDArray[np.str_]) -> NDArray[np.int64]:
    """Staff per kelurahan (in the order of `codes`) from the CSV at `path`; `field` names it."""
    if Path(path).is_dir():
        raise ScenarioError(f"{field}: {path} is a folder, not a CSV table")
    if not Path(path).is_file():
        raise ScenarioError(f"{field}: table {path} not found")
    try:
        table = pd.read_csv(path, dtype={"kelurahan_code": str})
        given = table["kelurahan_code"].astype(str).str.strip()
        staff = pd.to_numeric(table["staff"], errors="coerce")
    except (KeyError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        why = " ".join(str(exc).split())  # pandas' messages span lines
        raise ScenarioError(f"{field}: {path} needs columns kelurahan_code,staff ({why})") from None
    repeated = given[given.duplicated()]
    if len(repeated):
        raise ScenarioError(f"{field}: kelurahan code {repeated.iloc[0]} is listed twice")
    unknown = sorted(set(given) - set(codes))
    if unknown:
        raise ScenarioError(f"{field}: unknown kelurahan code {unknown[0]} in {path}")
    missing = [c for c in codes if c not in set(given)]
    if missing:
        raise ScenarioError(
            f"{field}: kelurahan code {missing[0]} is missing from {path} ({len(missing)} missing)"
        )
    bad = ~staff.between(0, MAX_STAFF) | (staff != staff.round())  # NaN and inf are not between
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ScenarioError(
            f"{field}: staff of {given.iloc[row]} must be a whole number from 0 to {MAX_STAFF:,}, got {table['staff'].iloc[row]}"
        )
    by_code = dict(zip(given, staff.astype(np.int64), strict=True))
    return np.array([by_code[c] for c in codes], dtype=np.int64)


def desk_staff(city: City, scenario: Scenario) -> NDArray[np.int64]:
    """Coordination desk staff of each kelurahan."""
    c = scenario.coordination
    if c.staff_table:
        return read_staff_table(c.staff_table, "coordination.staff_table", city.kelurahan.codes)
    return np.full(city.n_kelurahan, c.staff_per_kelurahan, dtype=np.int64)


def ppsu_crews(city: City, scenario: Scenario) -> NDArray[np.int64]:
    """PPSU crews answering reports in each kelurahan: a table, or the scenario's rule.

    ``uniform`` gives every kelurahan ``crews.crews_per_kelurahan``; ``demand`` spreads the same
    city total in proportion to each kelurahan's expected share of reports (largest remainders),
    at least one crew each.
    """
    k = scenario.crews
    if k.staff_table:
        return read_staff_table(k.staff_table, "crews.staff_table", city.kelurahan.codes)
    per_kel = k.crews_per_kelurahan
    uniform = np.full(city.n_kelurahan, per_kel, dtype=np.int64)
    if k.staffing == "uniform" or per_kel == 0:
        return uniform
    from twin.model.demand import kelurahan_weights

    weights = kelurahan_weights(city, scenario)
    active = weights > 0
    total = per_kel * int(active.sum())
    spare = total - int(active.sum())  # one crew each first
    ideal = weights * spare
    crews = np.floor(ideal).astype(np.int64)
    left = spare - int(crews.sum())
    crews[np.argsort(-(ideal - crews), kind="stable")[:left]] += 1
    return np.where(active, crews + 1, 0).astype(np.int64)
