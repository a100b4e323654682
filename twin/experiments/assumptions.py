"""The model's assumed parameters and their plausible ranges, read from a TOML file.

Published figures pin down few of the model's parameters; the rest are assumptions. Each is
listed once, in ``scenarios/assumptions.toml``, with the range a value could plausibly take, its
unit and its source. Sensitivity analysis (`twin sensitivity`) and calibration read the ranges
from there, never from code. A range is checked against the scenario before any run: its field
must exist, low <= high, and both ends must be values the scenario accepts.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twin.errors import ScenarioError
from twin.experiments.variants import apply_point

if TYPE_CHECKING:
    from pathlib import Path

    from twin.model.scenario import Scenario

KEYS = {"low", "high", "unit", "source"}


@dataclass(frozen=True, slots=True)
class Assumption:
    """One assumed parameter.

    Attributes
    ----------
    field
        Dotted scenario field, e.g. ``coordination.agency_scale``.
    low, high
        Its plausible range (inclusive).
    unit
        Unit, in words.
    source
        Where the range comes from (``assumed``, or a reference).
    """

    field: str
    low: float
    high: float
    unit: str = ""
    source: str = "assumed"


def load_assumptions(path: Path, base: Scenario) -> list[Assumption]:
    """Read and check an assumptions file against `base`; one clear `ScenarioError` per problem."""
    if not path.is_file():
        raise ScenarioError(f"{path}: assumptions file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    if not data:
        raise ScenarioError(f"{path}: lists no parameter")
    return [parse_assumption(field, spec, base, f"{path}: {field}") for field, spec in data.items()]


def parse_assumption(field: str, spec: object, base: Scenario, where: str) -> Assumption:
    """One range ``{ low, high, unit, source }`` for `field`, checked against `base` (low <= high,
    both ends accepted by the scenario); `where` starts the error message."""
    if not isinstance(spec, dict):
        raise ScenarioError(f"{where}: expected a table {{ low = ..., high = ... }}")
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise ScenarioError(
            f"{where}: {unknown[0]}: unknown key (known: {', '.join(sorted(KEYS))})"
        )
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except KeyError as exc:
        raise ScenarioError(f"{where}: {exc.args[0]} is missing") from None
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: low and high must be numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ScenarioError(f"{where}: low and high must be finite")
    if low > high:
        raise ScenarioError(f"{where}: low {low:g} > high {high:g}")
    for end in (low, high):
        try:
            apply_point(base, {field: end})
        except ScenarioError as exc:
            if "is not a scenario field" in str(exc):
                raise ScenarioError(f"{where}: not a scenario field") from None
            raise ScenarioError(
                f"{where}: {end:g} is outside what the scenario accepts ({exc})"
            ) from None
    return Assumption(
        field, low, high, str(spec.get("unit", "")), str(spec.get("source", "assumed"))
    )
