"""Scenarios: every parameter of a twin run, checked across fields and read strictly from TOML.

A scenario is a tree of frozen dataclasses (`twin.model.parameters`). `load_scenario` maps the TOML onto it field by field:
an unknown key, a wrong type, a negative rate or an unknown dispatch policy stops the load with
one line naming the field (``crews.dispatch: unknown policy 'closest'; choose from ...``).
Defaults are the documented assumptions of `scenarios/README.md`; a scenario file lists what it
changes, and may name a ``base`` file it extends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.errors import ScenarioError
from twin.model.changes import check_changes, schedule
from twin.model.costs import CostParams
from twin.model.parameters import (
    DEFAULT_AGENCIES,
    DEFAULT_CATEGORIES,
    DEFAULT_ROUTING,
    DESK_DISCIPLINES,
    DISPATCH_POLICIES,
    FIRST_YEAR,
    LAST_YEAR,
    MAX_FACTOR,
    MAX_REPORTS_PER_RUN,
    MAX_RUN_DAYS,
    MAX_STAFF,
    POOLING,
    STAFFING_RULES,
    AgencyParams,
    Change,
    CityParams,
    CoordinationParams,
    CrewParams,
    DemandParams,
    RunParams,
    TargetParams,
    check_at_most,
    check_non_negative,
    check_share,
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A complete scenario.

    Attributes
    ----------
    name
        Scenario name (the file stem unless given).
    description
        One line on what it represents.
    run, demand, coordination, crews, targets, city
        The parameter groups.
    agencies
        The agencies (OPD) and their field teams, by name.
    routing
        Per report category, the share that goes to ``ppsu`` and to each agency (sums to 1).
    changes
        Dated changes inside the run (``[[changes]]``), in date order.
    costs
        Monthly cost of each kind of staff (`twin.model.costs`).
    """

    name: str = "scenario"
    description: str = ""
    run: RunParams = field(default_factory=RunParams)
    demand: DemandParams = field(default_factory=DemandParams)
    coordination: CoordinationParams = field(default_factory=CoordinationParams)
    crews: CrewParams = field(default_factory=CrewParams)
    targets: TargetParams = field(default_factory=TargetParams)
    city: CityParams = field(default_factory=CityParams)
    agencies: dict[str, AgencyParams] = field(default_factory=lambda: dict(DEFAULT_AGENCIES))
    routing: dict[str, dict[str, float]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_ROUTING.items()}
    )
    changes: tuple[Change, ...] = ()
    costs: CostParams = field(default_factory=CostParams)

    def __post_init__(self) -> None:
        validate(self)

    def schedule(self, name: str) -> list[tuple[int, float]]:
        """``(day, value)`` of numeric field `name` from day 0 on, one entry per change (day 0
        first); `twin.model.changes.schedule` gives any field's."""
        return [(day, float(value)) for day, value in schedule(self, name)]


def validate(s: Scenario) -> None:
    """Check the cross-field rules that types alone do not catch."""
    d, c, k = s.demand, s.coordination, s.crews
    _validate_run(s.run)
    check_non_negative("demand.reports_per_day", d.reports_per_day)
    _check_volume(s)
    for name, n, values in (
        ("hourly_profile", 24, d.hourly_profile),
        ("weekly_profile", 7, d.weekly_profile),
    ):
        if len(values) != n:
            raise ScenarioError(f"demand.{name} must have {n} values, got {len(values)}")
        for i, v in enumerate(values):
            check_non_negative(f"demand.{name}[{i}]", v)
        if sum(values) <= 0:
            raise ScenarioError(f"demand.{name} must not be all zero")
    for group, weights in (
        ("categories", d.categories),
        ("channels", {n: ch.share for n, ch in d.channels.items()}),
    ):
        if not weights:
            raise ScenarioError(f"demand.{group} must not be empty")
        for name, w in weights.items():
            check_non_negative(f"demand.{group}.{name}", w)
        if sum(weights.values()) <= 0:
            raise ScenarioError(f"demand.{group}: weights must not all be zero")
    for name, ch in d.channels.items():
        check_non_negative(f"demand.channels.{name}.entry_delay_min", ch.entry_delay_min)
    for name in ("population_weight", "invalid_share", "duplicate_share"):
        check_share(f"demand.{name}", getattr(d, name))
    if d.invalid_share + d.duplicate_share > 1:
        raise ScenarioError("demand.invalid_share + demand.duplicate_share must not exceed 1")
    check_non_negative("demand.access_mean_m", d.access_mean_m)
    check_at_most("demand.access_mean_m", d.access_mean_m, 10_000.0, " m")  # 10 km off the road
    if len(d.monthly_profile) != 12:
        raise ScenarioError(
            f"demand.monthly_profile must have 12 values, got {len(d.monthly_profile)}"
        )
    for i, v in enumerate(d.monthly_profile):
        check_non_negative(f"demand.monthly_profile[{i}]", v)
    if sum(d.monthly_profile) <= 0:
        raise ScenarioError("demand.monthly_profile must not be all zero")
    check_non_negative("demand.daily_cv", d.daily_cv)
    check_non_negative("demand.holiday_factor", d.holiday_factor)
    for name, value in (("daily_cv", d.daily_cv), ("holiday_factor", d.holiday_factor),
                        ("flood.multiplier", d.flood.multiplier)):  # fmt: skip
        check_at_most(f"demand.{name}", value, MAX_FACTOR)
    if d.flood.multiplier < 1:
        raise ScenarioError(f"demand.flood.multiplier must be >= 1, got {d.flood.multiplier}")
    check_share("demand.flood.flood_share", d.flood.flood_share)
    for day in d.flood.days:
        if not 0 <= day < s.run.days:
            raise ScenarioError(
                f"demand.flood.days: day {day} is outside the run (0..{s.run.days - 1})"
            )
    if not 0 <= c.office_open_h < c.office_close_h <= 24:
        raise ScenarioError(
            f"coordination: office hours must satisfy 0 <= office_open_h < office_close_h <= 24, got {c.office_open_h}-{c.office_close_h}"
        )
    if c.staff_per_kelurahan < 0:
        raise ScenarioError(
            f"coordination.staff_per_kelurahan must be >= 0, got {c.staff_per_kelurahan}"
        )
    check_at_most("coordination.staff_per_kelurahan", c.staff_per_kelurahan, MAX_STAFF)
    check_at_most("crews.per_kelurahan", k.per_kelurahan, MAX_STAFF)
    for i, day in enumerate(c.working_days):
        if not 0 <= day <= 6:
            raise ScenarioError(
                f"coordination.working_days[{i}] must be a weekday 0-6 (Monday = 0), got {day}"
            )
    if c.discipline not in DESK_DISCIPLINES:
        raise ScenarioError(
            f"coordination.discipline: unknown discipline {c.discipline!r}; choose from {', '.join(DESK_DISCIPLINES)}"
        )
    check_non_negative("coordination.escalate_after_h", c.escalate_after_h)
    check_non_negative("coordination.patience_h", c.patience_h)
    c.handling.validate("coordination.handling")
    check_non_negative("coordination.agency_scale", c.agency_scale)
    _validate_agencies(s)
    check_share("coordination.unanswered_share", c.unanswered_share)
    if k.per_kelurahan < 0:
        raise ScenarioError(f"crews.per_kelurahan must be >= 0, got {k.per_kelurahan}")
    check_share("crews.complaint_duty_share", k.complaint_duty_share)
    if k.dispatch not in DISPATCH_POLICIES:
        raise ScenarioError(
            f"crews.dispatch: unknown policy {k.dispatch!r}; choose from {', '.join(DISPATCH_POLICIES)}"
        )
    if k.pooling not in POOLING:
        raise ScenarioError(
            f"crews.pooling: unknown pooling {k.pooling!r}; choose from {', '.join(POOLING)}"
        )
    if k.staffing not in STAFFING_RULES:
        raise ScenarioError(
            f"crews.staffing: unknown rule {k.staffing!r}; choose from {', '.join(STAFFING_RULES)}"
        )
    check_share("crews.second_day_share", k.second_day_share)
    k.second_day_wait.validate("crews.second_day_wait")
    if not k.shifts:
        raise ScenarioError("crews.shifts must list at least one [start_h, end_h] shift")
    for i, shift in enumerate(k.shifts):
        if len(shift) != 2 or not (0 <= shift[0] < 24 and shift[0] < shift[1] <= shift[0] + 24):
            raise ScenarioError(
                f"crews.shifts[{i}] must be [start_h, end_h] with 0 <= start < 24 and start < end <= start + 24, got {list(shift)}"
            )
    _no_overlap(k.shifts)
    missing = sorted(set(d.categories) - set(k.work))
    if missing:
        raise ScenarioError(
            f"crews.work: no work-time distribution for categor{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}"
        )
    for i, category in enumerate(k.priority_order):  # the default order may name absent ones
        if category not in d.categories and category not in DEFAULT_CATEGORIES:
            raise ScenarioError(
                f"crews.priority_order[{i}]: unknown category {category!r}; choose from {', '.join(d.categories)}"
            )
    for name, dist in k.work.items():
        dist.validate(f"crews.work.{name}")
    k.verify_delay.validate("crews.verify_delay")
    check_non_negative("crews.proof_min", k.proof_min)
    check_share("crews.rework_probability", k.rework_probability)
    if k.rework_probability >= 1 and k.verification:
        raise ScenarioError("crews.rework_probability must be below 1, or no job would ever close")
    for name in ("coordination_mean_h", "resolution_mean_h", "benchmark_resolution_h"):
        check_non_negative(f"targets.{name}", getattr(s.targets, name))
    _validate_routing(s)
    check_changes(s)
    s.city.speed_settings()  # raises ScenarioError naming a bad speed


def _validate_run(run: RunParams) -> None:
    """Run length within ten years, a seed numpy accepts, a start date in the calendar."""
    if run.days < 1:
        raise ScenarioError(f"run.days must be >= 1, got {run.days}")
    for name in ("warm_up_days", "follow_up_days"):
        if getattr(run, name) < 0:
            raise ScenarioError(f"run.{name} must be >= 0, got {getattr(run, name)}")
    for name in ("days", "warm_up_days", "follow_up_days"):
        check_at_most(f"run.{name}", getattr(run, name), MAX_RUN_DAYS, " days")
    if run.seed < 0:
        raise ScenarioError(f"run.seed must be a whole number >= 0, got {run.seed}")
    try:
        start = dt.date.fromisoformat(run.start_date)
    except (TypeError, ValueError):
        raise ScenarioError(
            f"run.start_date: not a date like 2016-12-01, got {run.start_date!r}"
        ) from None
    try:
        first = start - dt.timedelta(days=run.warm_up_days)
        last = start + dt.timedelta(days=run.days + run.follow_up_days)
    except OverflowError:  # past year 9999
        first = last = dt.date.max
    if first.year < FIRST_YEAR or last.year > LAST_YEAR:
        raise ScenarioError(
            f"run.start_date: the run ({first} to {last} with warm-up and follow-up) must fall "
            f"within {FIRST_YEAR}-{LAST_YEAR}, got start {run.start_date}"
        )


def _check_volume(s: Scenario) -> None:
    """Refuse a demand whose reports would not fit in memory, before any is drawn."""
    d, run = s.demand, s.run
    days = run.warm_up_days + run.days + run.follow_up_days
    monthly = d.monthly_profile
    peak = max(monthly) / (sum(monthly) / len(monthly)) if sum(monthly) > 0 else 1.0
    expected = d.reports_per_day * days * peak
    if not expected <= MAX_REPORTS_PER_RUN:
        raise ScenarioError(
            f"demand.reports_per_day: {d.reports_per_day:,.6g} a day over {days:,} simulated days is "
            f"about {expected:,.3g} reports, more than the {MAX_REPORTS_PER_RUN:,} a run holds in "
            "memory; lower the demand or shorten the run"
        )


def _hours(where: str, open_h: float, close_h: float, days: tuple[int, ...]) -> None:
    if not 0 <= open_h < close_h <= 24:
        raise ScenarioError(
            f"{where}: hours must satisfy 0 <= open < close <= 24, got {open_h}-{close_h}"
        )
    for i, day in enumerate(days):
        if not 0 <= day <= 6:
            raise ScenarioError(
                f"{where}.working_days[{i}] must be a weekday 0-6 (Monday = 0), got {day}"
            )


def _no_overlap(shifts: tuple[tuple[float, float], ...]) -> None:
    """Shifts may not overlap (on a 24-hour clock): crews are split evenly over them."""
    spans = sorted(shifts)
    for (a1, b1), (a2, _) in itertools.pairwise(spans):
        if a2 < b1:
            raise ScenarioError(f"crews.shifts: [{a1}, {b1}] overlaps the shift starting at {a2}")
    if len(spans) > 1 and spans[-1][1] - 24 > spans[0][0]:
        raise ScenarioError(
            f"crews.shifts: {list(spans[-1])} runs past midnight into the shift starting at {spans[0][0]}"
        )


def _validate_agencies(s: Scenario) -> None:
    for name, a in s.agencies.items():
        where = f"agencies.{name}"
        if name == "ppsu":
            raise ScenarioError(f"{where}: 'ppsu' is not an agency name (it is the PPSU route)")
        if a.teams_per_kota < 0:
            raise ScenarioError(f"{where}.teams_per_kota must be >= 0, got {a.teams_per_kota}")
        check_at_most(f"{where}.teams_per_kota", a.teams_per_kota, MAX_STAFF)
        _hours(where, a.open_h, a.close_h, a.working_days)
        a.handover.validate(f"{where}.handover")
        check_share(f"{where}.second_visit_share", a.second_visit_share)
        a.second_visit_wait.validate(f"{where}.second_visit_wait")


def _validate_routing(s: Scenario) -> None:
    scale = s.coordination.agency_scale
    for category in s.demand.categories:
        if category not in s.routing:
            raise ScenarioError(
                f"routing: category {category!r} has no route (add [routing.{category}])"
            )
    for category, route in s.routing.items():
        where = f"routing.{category}"
        if not route:
            raise ScenarioError(f"{where}: empty route; give ppsu and agency shares summing to 1")
        for dest, share in route.items():
            check_share(f"{where}.{dest}", share)
            if dest != "ppsu" and dest not in s.agencies:
                raise ScenarioError(
                    f"{where}.{dest}: unknown agency; choose from ppsu, {', '.join(s.agencies)}"
                )
        total = sum(route.values())
        if abs(total - 1) > 1e-6:
            raise ScenarioError(f"{where}: shares sum to {total:g}, not 1")
        to_agencies = sum(v for d, v in route.items() if d != "ppsu")
        if scale * to_agencies > 1 + 1e-9:
            raise ScenarioError(
                f"coordination.agency_scale: {scale:g} x {where}'s agency shares ({to_agencies:g}) exceeds 1"
            )
        if category not in s.demand.categories or s.demand.categories[category] == 0:
            continue
        for dest, share in route.items():
            if dest != "ppsu" and share * scale > 0 and s.agencies[dest].teams_per_kota == 0:
                raise ScenarioError(
                    f"agencies.{dest}.teams_per_kota: no teams, but {where} sends it {share:g} of its reports"
                )
            if dest != "ppsu" and share * scale > 0 and not s.agencies[dest].working_days:
                raise ScenarioError(
                    f"agencies.{dest}.working_days: no working day, but {where} sends it {share:g} of its reports (they would wait forever)"
                )


# --- strict TOML -> dataclass mapping ---------------------------------------------------------


_KIND = {float: "a number", int: "a whole number", str: "a string", bool: "true or false"}


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Convert one TOML value to the type `hint`, or raise naming `where`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ScenarioError(f"{where}: expected a table, got {type(value).__name__} {value!r}")
        return _build(hint, value, where)  # type: ignore[arg-type]
    if hint is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where}: expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ScenarioError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ScenarioError(f"{where}: expected a table, got {value!r}")
        return {str(k): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise ScenarioError(f"{where}: expected a list, got {value!r}")
        item = args[0]
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):  # the first type the value converts to
        for arg in args:
            try:
                return _convert(value, arg, where)
            except ScenarioError:
                continue
        kinds = " or ".join(_KIND.get(arg, str(arg)) for arg in args)
        raise ScenarioError(f"{where}: expected {kinds}, got {value!r}")
    raise ScenarioError(f"{where}: unsupported type {hint}")  # pragma: no cover


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ScenarioError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(fields)})")
    absent = [name for name in fields if name not in data]
    if cls is Change and absent:  # a dated change has no default value to fall back on
        raise ScenarioError(f"{where}.{absent[0]}: missing (a change needs date, field and value)")
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        hint = hints[name]
        if name == "routing" and isinstance(value, dict):
            # a partial routing table: each listed category's route replaces its default
            default = fields[name].default_factory()  # type: ignore[misc,operator]
            item_hint = typing.get_args(hint)[1]
            kwargs[name] = {
                **default,
                **{k: _convert(v, item_hint, f"{path}.{k}") for k, v in value.items()},
            }
        elif name in ("work", "agencies", "channels") and isinstance(value, dict):
            # a partial table: listed entries override the defaults, others are kept (channels
            # are the whole mix: only the listed ones, each with its defaults for what it omits)
            default = fields[name].default_factory()  # type: ignore[misc,operator]
            item_hint = typing.get_args(hint)[1]
            merged = {} if name == "channels" else dict(default)
            for key, item in value.items():
                base = _as_toml(default[key]) if key in default else {}
                if not isinstance(item, dict):
                    raise ScenarioError(f"{path}.{key}: expected a table, got {item!r}")
                merged[key] = _build(item_hint, {**base, **item}, f"{path}.{key}")
            kwargs[name] = merged
        else:
            kwargs[name] = _convert(value, hint, path)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - all fields have defaults
        raise ScenarioError(f"{where or 'scenario'}: {exc}") from exc


def _as_toml(params: Any) -> dict[str, Any]:
    """A dataclass as the TOML-shaped dict it could be read from (tuples become lists)."""
    return typing.cast("dict[str, Any]", json.loads(json.dumps(dataclasses.asdict(params))))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


TABLE_FIELDS = (("coordination", "staff_table"), ("crews", "staff_table"))


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is fine
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not a UTF-8 text file") from exc
    for group, key in TABLE_FIELDS:  # a table named in a file is relative to that file
        table = data.get(group, {}).get(key) if isinstance(data.get(group), dict) else None
        if isinstance(table, str) and table and not Path(table).is_absolute():
            data[group][key] = str((path.parent / table).resolve())
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ScenarioError(f"{path}: base: expected a file name, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in seen:
        raise ScenarioError(f"{path}: base {base} is circular")
    return _merge(_read_toml(base_path, (*seen, base_path)), data)


def scenario_from_dict(data: dict[str, Any], *, name: str = "scenario") -> Scenario:
    """Build a `Scenario` from a TOML-shaped dict (unknown keys and wrong types are errors)."""
    data = {"name": name, **data}
    return typing.cast("Scenario", _build(Scenario, data, ""))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path
        A TOML file; it may name a ``base`` file (relative to itself) whose values it overrides.

    Returns
    -------
    scenario
        The validated scenario; `ScenarioError` with one line naming the field otherwise.
    """
    path = Path(path)
    try:
        return scenario_from_dict(_read_toml(path), name=path.stem)
    except ScenarioError as exc:
        msg = str(exc)
        raise ScenarioError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
