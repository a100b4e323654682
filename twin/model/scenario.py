"""Scenarios: every parameter of a twin run, read strictly from a TOML file.

A scenario is a tree of frozen dataclasses. `load_scenario` maps the TOML onto it field by field:
an unknown key, a wrong type, a negative rate or an unknown dispatch policy stops the load with
one line naming the field (``crews.dispatch: unknown policy 'closest'; choose from ...``).
Defaults are the documented assumptions of `scenarios/README.md`; a scenario file lists what it
changes, and may name a ``base`` file it extends.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.city.speeds import DEFAULT_CONGESTION_BY_HOUR, DEFAULT_SPEEDS_KPH, SpeedSettings
from twin.errors import ScenarioError

DISPATCH_POLICIES = ("nearest", "least_loaded", "fifo", "priority")
POOLING = ("kelurahan", "kecamatan")
DISTRIBUTIONS = ("lognormal", "exponential", "fixed")

# Category mix: Jakarta CRM 2020 top categories (public order 15,968; garbage 14,494; illegal
# parking 14,493; trees 8,199; regulation violations 7,860), the rest assumed.
DEFAULT_CATEGORIES: dict[str, float] = {
    "public_order": 0.16,
    "garbage": 0.145,
    "illegal_parking": 0.145,
    "trees": 0.08,
    "regulation_violation": 0.08,
    "roads": 0.10,
    "drainage": 0.07,
    "street_vendors": 0.06,
    "street_lights": 0.05,
    "flood": 0.03,
    "other": 0.08,
}
# Channels 2021: JAKI 102,986; Qlue 12,022; Twitter 9,525; email 4,549; Facebook 2,342; SMS and
# walk-in assumed small. Entry delay: minutes from the resident's report to the CRM (assumed).
DEFAULT_CHANNELS: dict[str, tuple[float, float]] = {
    "jaki": (0.76, 0.0),
    "qlue": (0.09, 0.0),
    "twitter": (0.07, 60.0),
    "email": (0.034, 240.0),
    "facebook": (0.017, 90.0),
    "sms": (0.005, 120.0),
    "walk_in": (0.004, 0.0),
}
# Hour-of-day shape of reports (relative; assumed from app-usage patterns: morning and evening peaks).
DEFAULT_HOURLY: tuple[float, ...] = (
    0.25, 0.15, 0.1, 0.1, 0.2, 0.5, 1.0, 1.4, 1.6, 1.6, 1.5, 1.4,
    1.3, 1.3, 1.3, 1.3, 1.4, 1.5, 1.4, 1.3, 1.2, 1.0, 0.7, 0.4,
)  # fmt: skip
DEFAULT_WEEKLY: tuple[float, ...] = (1.1, 1.05, 1.0, 1.0, 1.0, 0.9, 0.85)  # Monday first
# Field work on site, minutes (lognormal mean, sd; assumed): what a PPSU crew does per category.
DEFAULT_WORK: dict[str, tuple[float, float]] = {
    "public_order": (45, 30),
    "garbage": (60, 40),
    "illegal_parking": (30, 20),
    "trees": (150, 90),
    "regulation_violation": (40, 30),
    "roads": (120, 90),
    "drainage": (120, 80),
    "street_vendors": (40, 25),
    "street_lights": (60, 40),
    "flood": (180, 120),
    "other": (60, 40),
}
DEFAULT_PRIORITY = ("flood", "trees", "drainage", "roads")  # blocking hazards first


@dataclass(frozen=True, slots=True)
class Distribution:
    """A non-negative duration distribution, in minutes.

    Attributes
    ----------
    dist
        ``lognormal``, ``exponential`` or ``fixed``.
    mean_min
        Mean, minutes.
    sd_min
        Standard deviation, minutes (lognormal only).
    """

    dist: str = "lognormal"
    mean_min: float = 60.0
    sd_min: float = 30.0

    def validate(self, where: str) -> None:
        """Raise `ScenarioError` naming `where` if the parameters are impossible."""
        if self.dist not in DISTRIBUTIONS:
            raise ScenarioError(
                f"{where}.dist: unknown distribution {self.dist!r}; choose from {', '.join(DISTRIBUTIONS)}"
            )
        _non_negative(f"{where}.mean_min", self.mean_min)
        _non_negative(f"{where}.sd_min", self.sd_min)
        if self.dist == "lognormal" and self.mean_min == 0 and self.sd_min > 0:
            raise ScenarioError(f"{where}: a lognormal with mean 0 cannot have sd > 0")


@dataclass(frozen=True, slots=True)
class Channel:
    """A reporting channel: its share of reports and its entry delay.

    Attributes
    ----------
    share
        Relative weight of the channel (normalised over channels).
    entry_delay_min
        Mean minutes from the resident's report to the CRM (exponential).
    """

    share: float = 0.0
    entry_delay_min: float = 0.0


@dataclass(frozen=True, slots=True)
class FloodParams:
    """Flood days: report surges in flood-prone RW.

    Attributes
    ----------
    days
        Day numbers (0 = the first day of the measured period) that are flood days.
    multiplier
        Total report volume on a flood day as a multiple of a normal day.
    flood_share
        Share of the extra reports that are in category ``flood`` (the rest drainage, trees).
    """

    days: tuple[int, ...] = ()
    multiplier: float = 3.0
    flood_share: float = 0.7


@dataclass(frozen=True, slots=True)
class DemandParams:
    """Report arrivals: volume, daily and weekly rhythm, category mix, channels, places.

    Attributes
    ----------
    reports_per_day
        Mean reports per day over a normal week.
    hourly_profile
        24 relative rates, hour 0 first (normalised to mean 1).
    weekly_profile
        7 relative rates, Monday first (normalised to mean 1).
    categories
        Relative weight of each category.
    channels
        Each channel's share and entry delay.
    population_weight
        Weight of population (kota population spread by area) in placing reports; the rest
        follows road density (road nodes per kelurahan).
    invalid_share
        Share of reports closed as invalid at coordination, without field work.
    duplicate_share
        Share closed as duplicates at coordination.
    access_mean_m
        Mean distance of a report point from its road node, metres (exponential).
    flood
        Flood days.
    """

    reports_per_day: float = 1000.0
    hourly_profile: tuple[float, ...] = DEFAULT_HOURLY
    weekly_profile: tuple[float, ...] = DEFAULT_WEEKLY
    categories: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    channels: dict[str, Channel] = field(
        default_factory=lambda: {k: Channel(s, d) for k, (s, d) in DEFAULT_CHANNELS.items()}
    )
    population_weight: float = 0.5
    invalid_share: float = 0.08
    duplicate_share: float = 0.04
    access_mean_m: float = 40.0
    flood: FloodParams = field(default_factory=FloodParams)


@dataclass(frozen=True, slots=True)
class CoordinationParams:
    """Coordination (Koordinasi) by kelurahan staff, the 6-hour clock.

    Attributes
    ----------
    enabled
        False skips the step (for verification runs).
    office_open_h, office_close_h
        Hours of the day the kelurahan desk coordinates (reports wait outside them).
    handling
        Time from pick-up to coordinated, minutes.
    agency_share
        Share of valid reports handed to an agency (OPD) instead of PPSU.
    agency_delay
        Agency's time from hand-over to resolution, minutes.
    unanswered_share
        Share of reports the kelurahan never picks up: they stay waiting (Menunggu) and are
        neither coordinated nor resolved within the run (Dec 2016: 84 % finished).
    """

    enabled: bool = True
    office_open_h: float = 7.0
    office_close_h: float = 22.0
    handling: Distribution = field(default_factory=lambda: Distribution("lognormal", 60.0, 60.0))
    agency_share: float = 0.15
    agency_delay: Distribution = field(
        default_factory=lambda: Distribution("lognormal", 1440.0, 1440.0)
    )
    unanswered_share: float = 0.0


@dataclass(frozen=True, slots=True)
class CrewParams:
    """PPSU crews and how jobs are dispatched to them.

    Attributes
    ----------
    per_kelurahan
        PPSU headcount per kelurahan (published: 40-70).
    complaint_duty_share
        Share of the headcount that answers reports (the rest do routine sweeping and
        drainage work); crews per kelurahan = max(1, round(per_kelurahan x share)).
    shifts
        Shifts as [start_h, end_h] pairs; crews are split evenly over them. An end past 24
        runs over midnight.
    dispatch
        ``nearest`` (Go-Jek rule), ``least_loaded``, ``fifo`` or ``priority``.
    pooling
        ``kelurahan`` (crews serve their own) or ``kecamatan`` (pooled across the kecamatan).
    travel
        False makes travel instantaneous (for verification runs).
    work
        On-site work per category, minutes.
    proof_min
        Minutes to photograph and upload the proof.
    verification
        Kelurahan staff verify the proof photo.
    rework_probability
        Chance that verification sends the job back for another visit.
    verify_delay
        Time to verify, minutes.
    """

    per_kelurahan: int = 50
    complaint_duty_share: float = 0.1
    shifts: tuple[tuple[float, float], ...] = ((6.0, 14.0), (14.0, 22.0))
    dispatch: str = "nearest"
    pooling: str = "kelurahan"
    travel: bool = True
    work: dict[str, Distribution] = field(
        default_factory=lambda: {
            k: Distribution("lognormal", m, s) for k, (m, s) in DEFAULT_WORK.items()
        }
    )
    proof_min: float = 5.0
    verification: bool = True
    rework_probability: float = 0.03
    verify_delay: Distribution = field(
        default_factory=lambda: Distribution("exponential", 30.0, 30.0)
    )
    priority_order: tuple[str, ...] = DEFAULT_PRIORITY

    @property
    def crews_per_kelurahan(self) -> int:
        """Crews answering reports in each kelurahan."""
        return (
            max(1, round(self.per_kelurahan * self.complaint_duty_share))
            if self.per_kelurahan
            else 0
        )


@dataclass(frozen=True, slots=True)
class TargetParams:
    """SLA targets the KPIs are judged against.

    Attributes
    ----------
    coordination_mean_h
        Mean coordination time, hours (Pergub 128/2017: 6).
    resolution_mean_h
        Mean resolution time, hours (Pergub 128/2017: 7 days = 168).
    benchmark_resolution_h
        Mean resolution of December 2016, hours (9).
    """

    coordination_mean_h: float = 6.0
    resolution_mean_h: float = 168.0
    benchmark_resolution_h: float = 9.0


@dataclass(frozen=True, slots=True)
class CityParams:
    """Speed assumptions (see `twin.city.speeds`).

    Attributes
    ----------
    speeds_kph
        Free-flow motorbike speed per highway class.
    congestion_by_hour
        24 travel-time multipliers.
    access_speed_kph, detour_factor, boat_speed_kph, default_speed_kph
        Off-network legs.
    """

    speeds_kph: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SPEEDS_KPH))
    congestion_by_hour: tuple[float, ...] = DEFAULT_CONGESTION_BY_HOUR
    access_speed_kph: float = 10.0
    detour_factor: float = 1.4
    boat_speed_kph: float = 25.0
    default_speed_kph: float = 18.0

    def speed_settings(self) -> SpeedSettings:
        """The `SpeedSettings` these parameters describe."""
        return SpeedSettings(
            speeds_kph=dict(self.speeds_kph),
            default_speed_kph=self.default_speed_kph,
            congestion_by_hour=tuple(self.congestion_by_hour),
            access_speed_kph=self.access_speed_kph,
            detour_factor=self.detour_factor,
            boat_speed_kph=self.boat_speed_kph,
        )


@dataclass(frozen=True, slots=True)
class RunParams:
    """Run length and seed.

    Attributes
    ----------
    days
        The measured period, in days: its reports are the run's cohort.
    warm_up_days
        Days simulated before the period (their reports load the crews but are not counted).
    follow_up_days
        Days simulated after the period: its reports keep being handled (and new ones keep
        arriving) so the cohort is followed up; reports still open then are censored.
    seed
        Base seed of the random streams.
    start_date
        Calendar date of day 0 (sets the weekday).
    only_kelurahan
        Restrict the run to these kelurahan codes (empty: all).
    """

    days: int = 30
    warm_up_days: int = 7
    follow_up_days: int = 14
    seed: int = 42
    start_date: str = "2016-12-01"
    only_kelurahan: tuple[str, ...] = ()


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
    """

    name: str = "scenario"
    description: str = ""
    run: RunParams = field(default_factory=RunParams)
    demand: DemandParams = field(default_factory=DemandParams)
    coordination: CoordinationParams = field(default_factory=CoordinationParams)
    crews: CrewParams = field(default_factory=CrewParams)
    targets: TargetParams = field(default_factory=TargetParams)
    city: CityParams = field(default_factory=CityParams)

    def __post_init__(self) -> None:
        validate(self)


def _non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ScenarioError(f"{name} must be a non-negative number, got {value!r}")


def _share(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ScenarioError(f"{name} must be a share between 0 and 1, got {value!r}")


def validate(s: Scenario) -> None:
    """Check the cross-field rules that types alone do not catch."""
    d, c, k = s.demand, s.coordination, s.crews
    if s.run.days < 1:
        raise ScenarioError(f"run.days must be >= 1, got {s.run.days}")
    for name in ("warm_up_days", "follow_up_days"):
        if getattr(s.run, name) < 0:
            raise ScenarioError(f"run.{name} must be >= 0, got {getattr(s.run, name)}")
    _non_negative("demand.reports_per_day", d.reports_per_day)
    for name, n, values in (
        ("hourly_profile", 24, d.hourly_profile),
        ("weekly_profile", 7, d.weekly_profile),
    ):
        if len(values) != n:
            raise ScenarioError(f"demand.{name} must have {n} values, got {len(values)}")
        for i, v in enumerate(values):
            _non_negative(f"demand.{name}[{i}]", v)
        if sum(values) <= 0:
            raise ScenarioError(f"demand.{name} must not be all zero")
    for group, weights in (
        ("categories", d.categories),
        ("channels", {n: ch.share for n, ch in d.channels.items()}),
    ):
        if not weights:
            raise ScenarioError(f"demand.{group} must not be empty")
        for name, w in weights.items():
            _non_negative(f"demand.{group}.{name}", w)
        if sum(weights.values()) <= 0:
            raise ScenarioError(f"demand.{group}: weights must not all be zero")
    for name, ch in d.channels.items():
        _non_negative(f"demand.channels.{name}.entry_delay_min", ch.entry_delay_min)
    for name in ("population_weight", "invalid_share", "duplicate_share"):
        _share(f"demand.{name}", getattr(d, name))
    if d.invalid_share + d.duplicate_share > 1:
        raise ScenarioError("demand.invalid_share + demand.duplicate_share must not exceed 1")
    _non_negative("demand.access_mean_m", d.access_mean_m)
    if d.flood.multiplier < 1:
        raise ScenarioError(f"demand.flood.multiplier must be >= 1, got {d.flood.multiplier}")
    _share("demand.flood.flood_share", d.flood.flood_share)
    for day in d.flood.days:
        if not 0 <= day < s.run.days:
            raise ScenarioError(
                f"demand.flood.days: day {day} is outside the run (0..{s.run.days - 1})"
            )
    if not 0 <= c.office_open_h < c.office_close_h <= 24:
        raise ScenarioError(
            f"coordination: office hours must satisfy 0 <= office_open_h < office_close_h <= 24, got {c.office_open_h}-{c.office_close_h}"
        )
    c.handling.validate("coordination.handling")
    c.agency_delay.validate("coordination.agency_delay")
    _share("coordination.agency_share", c.agency_share)
    _share("coordination.unanswered_share", c.unanswered_share)
    if k.per_kelurahan < 0:
        raise ScenarioError(f"crews.per_kelurahan must be >= 0, got {k.per_kelurahan}")
    _share("crews.complaint_duty_share", k.complaint_duty_share)
    if k.dispatch not in DISPATCH_POLICIES:
        raise ScenarioError(
            f"crews.dispatch: unknown policy {k.dispatch!r}; choose from {', '.join(DISPATCH_POLICIES)}"
        )
    if k.pooling not in POOLING:
        raise ScenarioError(
            f"crews.pooling: unknown pooling {k.pooling!r}; choose from {', '.join(POOLING)}"
        )
    if not k.shifts:
        raise ScenarioError("crews.shifts must list at least one [start_h, end_h] shift")
    for i, shift in enumerate(k.shifts):
        if len(shift) != 2 or not (0 <= shift[0] < 24 and shift[0] < shift[1] <= shift[0] + 24):
            raise ScenarioError(
                f"crews.shifts[{i}] must be [start_h, end_h] with 0 <= start < 24 and start < end <= start + 24, got {list(shift)}"
            )
    missing = sorted(set(d.categories) - set(k.work))
    if missing:
        raise ScenarioError(
            f"crews.work: no work-time distribution for categor{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}"
        )
    for name, dist in k.work.items():
        dist.validate(f"crews.work.{name}")
    k.verify_delay.validate("crews.verify_delay")
    _non_negative("crews.proof_min", k.proof_min)
    _share("crews.rework_probability", k.rework_probability)
    if k.rework_probability >= 1 and k.verification:
        raise ScenarioError("crews.rework_probability must be below 1, or no job would ever close")
    for name in ("coordination_mean_h", "resolution_mean_h", "benchmark_resolution_h"):
        _non_negative(f"targets.{name}", getattr(s.targets, name))
    s.city.speed_settings()  # raises ScenarioError naming a bad speed


# --- strict TOML -> dataclass mapping ---------------------------------------------------------


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
    if origin in (typing.Union, types.UnionType):  # pragma: no cover - no optional fields yet
        return value
    raise ScenarioError(f"{where}: unsupported type {hint}")  # pragma: no cover


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ScenarioError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(fields)})")
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        hint = hints[name]
        if name == "work" and isinstance(value, dict):
            # a partial work table: listed categories override the defaults, others are kept
            default = fields[name].default_factory()  # type: ignore[misc,operator]
            item_hint = typing.get_args(hint)[1]
            merged = dict(default)
            for key, item in value.items():
                base = dataclasses.asdict(default[key]) if key in default else {}
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


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not a UTF-8 text file") from exc
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
