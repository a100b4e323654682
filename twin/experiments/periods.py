"""Published periods as files: each period's dates, scenario and published figures in one TOML file.

A researcher adds a period from its published figures by writing one file in
``scenarios/periods/`` (see the README there); `twin validate` and `twin calibrate` read every
file of the folder, and check each completely before any run. A published figure has a *role*:

``volume``
    The period's published demand (``reports_per_day``): an input, it sets the scenario's
    ``demand.reports_per_day``. Every period needs one.
``target``
    A published outcome. Fitted by `twin calibrate` when the period has ``fit = true``; predicted
    (never seen by the fit) in the leave-one-period-out check and for periods with ``fit = false``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.errors import ScenarioError
from twin.experiments.replications import HEADLINE_KPIS
from twin.experiments.variants import apply_point
from twin.model.parameters import FIRST_YEAR, LAST_YEAR
from twin.model.scenario import Scenario, load_scenario

PERIOD_KEYS = {"description", "start", "end", "scenario", "fit", "calibrate", "calibration_days",
               "ranges", "posterior", "published"}  # fmt: skip
FIGURE_KEYS = {"kpi", "value", "tolerance", "relative", "role", "source"}
ROLES = ("volume", "target")


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
    role
        ``volume`` (an input: the period's demand) or ``target`` (an outcome to fit or predict).
    """

    kpi: str
    published: float
    tolerance: float
    relative: bool
    source: str
    role: str = "target"

    @property
    def allowed(self) -> float:
        """The tolerance in the KPI's own unit."""
        return self.tolerance * abs(self.published) if self.relative else self.tolerance

    def passes(self, simulated: float) -> bool:
        """Whether `simulated` is within tolerance of the published value."""
        if not math.isfinite(simulated):
            return False
        return abs(simulated - self.published) <= self.allowed


@dataclass(frozen=True, slots=True)
class Period:
    """One published period.

    Attributes
    ----------
    name
        The file's stem, e.g. ``jakarta-2016``.
    path
        The period file.
    description
        One line.
    start, end
        First and last day of the published period (inclusive).
    scenario
        The period's scenario file (its structure: crews, categories, flood days...).
    fit
        Whether calibration may use the period's targets (False: a pure prediction).
    calibrate
        The assumed parameters its calibration fits (ranges from the assumptions file).
    calibration_days
        Measured days while fitting (None: the whole period).
    ranges
        Plausible ranges of this period only (``{field: {low, high, unit, source}}``), replacing
        the assumptions file's for its calibration; checked by `calibration_ranges`.
    posterior
        The accepted parameter sample of its calibration (a CSV), when there is one.
    figures
        Its published figures.
    """

    name: str
    path: Path
    description: str
    start: dt.date
    end: dt.date
    scenario: Path
    fit: bool
    calibrate: tuple[str, ...]
    calibration_days: int | None
    ranges: dict[str, Any]
    posterior: Path | None
    figures: tuple[Target, ...]

    @property
    def days(self) -> int:
        """Days of the published period."""
        return (self.end - self.start).days + 1

    @property
    def volume(self) -> Target:
        """The published demand."""
        return next(f for f in self.figures if f.role == "volume")

    @property
    def targets(self) -> tuple[Target, ...]:
        """The published outcomes (fitted or predicted)."""
        return tuple(f for f in self.figures if f.role == "target")

    def base_scenario(self, days: int | None = None) -> Scenario:
        """The period's scenario on its own dates and published volume (`days` measured days
        from the start, default the whole period; flood days past them fall away)."""
        try:
            scenario = load_scenario(self.scenario)
            days = days or self.days
            flood = dataclasses.replace(
                scenario.demand.flood,
                days=tuple(d for d in scenario.demand.flood.days if d < days),
            )
            scenario = dataclasses.replace(
                scenario,
                run=dataclasses.replace(scenario.run, days=days, start_date=self.start.isoformat()),
                demand=dataclasses.replace(scenario.demand, flood=flood),
            )
            return apply_point(scenario, {"demand.reports_per_day": self.volume.published})
        except ScenarioError as exc:  # name the period file: its dates and volume are applied
            raise ScenarioError(f"{self.path}: {exc}") from None


def load_period(path: Path) -> Period:
    """Read and check one period file; a `ScenarioError` naming the field on any problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: period file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - PERIOD_KEYS)
    if unknown:
        raise ScenarioError(
            f"{path}: {unknown[0]}: unknown key (known: {', '.join(sorted(PERIOD_KEYS))})"
        )
    start, end = _date(path, data, "start"), _date(path, data, "end")
    if end < start:
        raise ScenarioError(f"{path}: end {end} is before start {start}")
    for key, day in (("start", start), ("end", end)):
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise ScenarioError(
                f"{path}: {key}: {day} is outside the calendar the twin knows "
                f"({FIRST_YEAR}-{LAST_YEAR})"
            )
    if "scenario" not in data:
        raise ScenarioError(f"{path}: scenario is missing (the period's scenario file)")
    if not isinstance(data["scenario"], str) or not data["scenario"]:
        raise ScenarioError(f"{path}: scenario: expected a file name, got {data['scenario']!r}")
    scenario = (path.parent / data["scenario"]).resolve()
    if not scenario.is_file():
        raise ScenarioError(f"{path}: scenario: {scenario} not found")
    figures = tuple(_figure(path, i, spec) for i, spec in enumerate(_list(path, data, "published")))
    volumes = [f for f in figures if f.role == "volume"]
    if len(volumes) != 1 or volumes[0].kpi != "reports_per_day":
        raise ScenarioError(
            f'{path}: published: needs exactly one volume (role = "volume", kpi = "reports_per_day"), found {len(volumes)}'
        )
    calibrate = data.get("calibrate", [])
    if not isinstance(calibrate, list) or not all(isinstance(c, str) and c for c in calibrate):
        raise ScenarioError(
            f'{path}: calibrate: expected a list of dotted field names, e.g. ["crews.proof_min"], '
            f"got {calibrate!r}"
        )
    if len(set(calibrate)) < len(calibrate):
        raise ScenarioError(f"{path}: calibrate: a field is listed twice")
    fit = data.get("fit", True)
    if not isinstance(fit, bool):
        raise ScenarioError(f"{path}: fit must be true or false")
    if fit and not calibrate:
        raise ScenarioError(f"{path}: calibrate: a fitted period names the parameters it fits")
    days = data.get("calibration_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise ScenarioError(f"{path}: calibration_days must be a whole number >= 1")
    ranges = data.get("ranges", {})
    if not isinstance(ranges, dict):
        raise ScenarioError(f'{path}: ranges: expected tables [ranges."field"] with low and high')
    outside = [f for f in ranges if f not in calibrate]
    if outside:
        raise ScenarioError(f"{path}: ranges: {outside[0]} is not in calibrate")
    posterior = (path.parent / str(data["posterior"])).resolve() if "posterior" in data else None
    if posterior is not None and not posterior.is_file():
        raise ScenarioError(f"{path}: posterior: {posterior} not found (run twin calibrate)")
    return Period(
        name=path.stem, path=path, description=str(data.get("description", "")), start=start,
        end=end, scenario=scenario, fit=fit, calibrate=tuple(calibrate), calibration_days=days,
        ranges=ranges, posterior=posterior, figures=figures,
    )  # fmt: skip


def load_periods(folder: Path) -> dict[str, Period]:
    """Every period file (``*.toml``) of `folder`, by name; all checked before any run."""
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: periods folder not found")
    periods = {p.stem: load_period(p) for p in sorted(folder.glob("*.toml"))}
    if not periods:
        raise ScenarioError(f"{folder}: holds no period file (*.toml)")
    return periods


def _date(path: Path, data: dict[str, Any], key: str) -> dt.date:
    if key not in data:
        raise ScenarioError(f"{path}: {key} is missing (a date, e.g. 2016-12-01)")
    value = data[key]
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ScenarioError(f"{path}: {key}: {value!r} is not a date (YYYY-MM-DD)") from None


def _list(path: Path, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise ScenarioError(f"{path}: {key}: give at least one [[{key}]] figure (the volume)")
    return value


def _figure(path: Path, i: int, spec: Any) -> Target:
    where = f"{path}: published[{i}]"
    if not isinstance(spec, dict):
        raise ScenarioError(f"{where}: expected a table")
    unknown = sorted(set(spec) - FIGURE_KEYS)
    if unknown:
        raise ScenarioError(
            f"{where}: {unknown[0]}: unknown key (known: {', '.join(sorted(FIGURE_KEYS))})"
        )
    for key in ("kpi", "value", "tolerance"):
        if key not in spec:
            raise ScenarioError(f"{where}: {key} is missing")
    kpi = str(spec["kpi"])
    if kpi not in HEADLINE_KPIS:
        raise ScenarioError(
            f"{where}: kpi {kpi!r} is not a KPI (known: {', '.join(HEADLINE_KPIS)})"
        )
    role = str(spec.get("role", "target"))
    if role not in ROLES:
        raise ScenarioError(f"{where}: role {role!r}: choose {' or '.join(ROLES)}")
    if any(isinstance(spec[k], bool) or not isinstance(spec[k], int | float)
           for k in ("value", "tolerance")):  # fmt: skip
        raise ScenarioError(f"{where}: value and tolerance must be numbers")
    value, tolerance = float(spec["value"]), float(spec["tolerance"])
    if not (math.isfinite(value) and math.isfinite(tolerance)) or tolerance <= 0:
        raise ScenarioError(f"{where}: tolerance must be a number > 0")
    if role == "volume" and not value > 0:
        raise ScenarioError(
            f"{where}: value: the published volume must be > 0 a day, got {value:g}"
        )
    relative = spec.get("relative", False)
    if not isinstance(relative, bool):
        raise ScenarioError(f"{where}: relative must be true or false")
    return Target(kpi, value, tolerance, relative, str(spec.get("source", "")), role)
