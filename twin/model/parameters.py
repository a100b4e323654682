"""Scenario parameters: the frozen dataclasses a scenario is made of, with their documented defaults.

Defaults are the documented assumptions of `scenarios/README.md`. `twin.model.scenario` assembles
them into a `Scenario`, checks the rules across fields and reads them strictly from TOML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from twin.city.speeds import DEFAULT_CONGESTION_BY_HOUR, DEFAULT_SPEEDS_KPH, SpeedSettings
from twin.errors import ScenarioError

DISPATCH_POLICIES = ("nearest", "least_loaded", "fifo", "priority")
POOLING = ("kelurahan", "kecamatan")
DESK_DISCIPLINES = ("fifo", "priority")
STAFFING_RULES = ("uniform", "demand")
ALL_WEEK = (0, 1, 2, 3, 4, 5, 6)  # Monday = 0
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
        for field_name in ("mean_min", "sd_min"):
            check_non_negative(f"{where}.{field_name}", getattr(self, field_name))
            check_at_most(
                f"{where}.{field_name}", getattr(self, field_name), MAX_MINUTES, " (a year)"
            )
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
    monthly_profile
        12 relative rates, January first (normalised to mean 1): seasonality.
    daily_cv
        Coefficient of variation of a gamma-distributed factor (mean 1) multiplying each day's
        volume: day-to-day overdispersion, so that peak days emerge (0: none).
    holiday_factor
        Volume on Indonesia's public holidays as a multiple of a normal day.
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
    monthly_profile: tuple[float, ...] = (1.0,) * 12
    daily_cv: float = 0.0
    holiday_factor: float = 1.0


@dataclass(frozen=True, slots=True)
class CoordinationParams:
    """Coordination (Koordinasi) by kelurahan staff, the 6-hour clock.

    Attributes
    ----------
    enabled
        False skips the step (for verification runs).
    staff_per_kelurahan
        Desk staff coordinating reports in each kelurahan (each handles one report at a time).
    staff_table
        A CSV ``kelurahan_code,staff`` listing every kelurahan's desk staff (replaces the
        default); empty: none. A relative path is relative to the scenario file.
    office_open_h, office_close_h
        Hours of the day the kelurahan desk works (reports wait outside them; handling pauses
        at closing and resumes at the next opening).
    working_days
        Weekdays the desk works, Monday = 0.
    closed_on_holidays
        The desk is closed on Indonesia's public holidays (from the `holidays` package).
    discipline
        ``fifo`` (oldest first) or ``priority`` (categories in ``crews.priority_order`` first,
        then oldest first).
    escalate_after_h
        A report waiting longer than this jumps the queue (0: never); matters under ``priority``.
    patience_h
        Mean patience of a waiting report, hours (exponential): a report still waiting for the
        desk after its patience is abandoned, never picked up (0: infinite patience).
    handling
        Time from pick-up to coordinated, working minutes.
    agency_scale
        Multiplies every agency share of the routing table (what it takes from an agency goes
        to PPSU, and the other way round): one calibration knob for "more goes to the agencies".
    unanswered_share
        Residual lever: share of reports the kelurahan never picks up regardless of its load
        (they stay waiting, Menunggu). Abandonment after ``patience_h`` is the mechanism; this
        share covers what it does not explain, and each run reports both.
    """

    enabled: bool = True
    staff_per_kelurahan: int = 2
    staff_table: str = ""
    office_open_h: float = 7.0
    office_close_h: float = 22.0
    working_days: tuple[int, ...] = ALL_WEEK
    closed_on_holidays: bool = True
    discipline: str = "fifo"
    escalate_after_h: float = 0.0
    patience_h: float = 0.0
    handling: Distribution = field(default_factory=lambda: Distribution("lognormal", 60.0, 60.0))
    agency_scale: float = 1.0
    unanswered_share: float = 0.0


@dataclass(frozen=True, slots=True)
class CrewParams:
    """PPSU crews and how jobs are dispatched to them.

    Attributes
    ----------
    per_kelurahan
        PPSU headcount per kelurahan (published: 40-70).
    staffing
        How crews are spread: ``uniform`` (every kelurahan the same) or ``demand``
        (proportional to each kelurahan's expected reports, the city's total kept, at least 1).
    staff_table
        A CSV ``kelurahan_code,staff`` of crews answering reports per kelurahan (replaces the
        rule); empty: none.
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
    second_day_share
        Share of PPSU jobs that need a second visit (material to fetch, work too big for one
        shift).
    second_day_wait
        Time from the first visit to the job's return to the queue, minutes.
    verify_delay
        Time to verify, minutes.
    """

    per_kelurahan: int = 50
    staffing: str = "uniform"
    staff_table: str = ""
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
    second_day_share: float = 0.0
    second_day_wait: Distribution = field(
        default_factory=lambda: Distribution("fixed", 1440.0, 0.0)
    )

    @property
    def crews_per_kelurahan(self) -> int:
        """Crews answering reports in each kelurahan."""
        return (
            max(1, round(self.per_kelurahan * self.complaint_duty_share))
            if self.per_kelurahan
            else 0
        )


@dataclass(frozen=True, slots=True)
class AgencyParams:
    """An agency (OPD) answering reports with field teams per kota (its Suku Dinas).

    Attributes
    ----------
    teams_per_kota
        Field teams per kota, each taking one job at a time.
    open_h, close_h
        Hours the teams work (one shift; a team busy at closing finishes the job in overtime).
    working_days
        Weekdays worked, Monday = 0.
    closed_on_holidays
        No field work on Indonesia's public holidays.
    handover
        Time from the desk's hand-over (Disposisi) to the job entering the agency's queue,
        minutes (letters, scheduling).
    second_visit_share
        Share of jobs that span days: the team leaves after the first visit and comes back
        after a wait for material or a permit.
    second_visit_wait
        That wait, minutes.

    Notes
    -----
    Teams ride from the agency's base in each kota: the kelurahan office nearest the middle of
    the kota's kelurahan offices stands in for the Suku Dinas office. Work on site takes the
    report's category work time (``crews.work``), on each visit.
    """

    teams_per_kota: int = 2
    open_h: float = 8.0
    close_h: float = 16.0
    working_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    closed_on_holidays: bool = True
    handover: Distribution = field(default_factory=lambda: Distribution("lognormal", 240.0, 240.0))
    second_visit_share: float = 0.2
    second_visit_wait: Distribution = field(
        default_factory=lambda: Distribution("lognormal", 2880.0, 2880.0)
    )


def _agency(teams: int, days: tuple[int, ...], open_h: float, close_h: float) -> AgencyParams:
    return AgencyParams(teams_per_kota=teams, working_days=days, open_h=open_h, close_h=close_h)


WEEKDAYS = (0, 1, 2, 3, 4)
# Agencies (OPD) and their Suku Dinas field teams per kota (assumed): Satpol PP (public order),
# Dinas Perhubungan (transport: parking), Dinas Pertamanan dan Hutan Kota (parks: trees), Dinas
# Bina Marga (roads, street lights), Dinas Sumber Daya Air (water: drainage, floods), Dinas
# Lingkungan Hidup (environment: garbage). Satpol PP and Dishub patrol every day.
DEFAULT_AGENCIES: dict[str, AgencyParams] = {
    "satpol_pp": _agency(4, ALL_WEEK, 7.0, 22.0),
    "dishub": _agency(3, ALL_WEEK, 7.0, 22.0),
    "distamhut": _agency(2, WEEKDAYS, 8.0, 16.0),
    "bina_marga": _agency(2, WEEKDAYS, 8.0, 16.0),
    "sda": _agency(2, WEEKDAYS, 8.0, 16.0),
    "dlh": _agency(2, WEEKDAYS, 8.0, 16.0),
}
# Routing per category (assumed): the share kept by PPSU and the share handed to each agency.
DEFAULT_ROUTING: dict[str, dict[str, float]] = {
    "public_order": {"ppsu": 0.8, "satpol_pp": 0.2},
    "garbage": {"ppsu": 0.9, "dlh": 0.1},
    "illegal_parking": {"ppsu": 0.7, "dishub": 0.3},
    "trees": {"ppsu": 0.8, "distamhut": 0.2},
    "regulation_violation": {"ppsu": 0.8, "satpol_pp": 0.2},
    "roads": {"ppsu": 0.8, "bina_marga": 0.2},
    "drainage": {"ppsu": 0.85, "sda": 0.15},
    "street_vendors": {"ppsu": 0.8, "satpol_pp": 0.2},
    "street_lights": {"ppsu": 0.8, "bina_marga": 0.2},
    "flood": {"ppsu": 0.8, "sda": 0.2},
    "other": {"ppsu": 1.0},
}


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
class Change:
    """A dated change inside one run: from `date` on, `field` takes `value`.

    Attributes
    ----------
    date
        ISO date, inside the run (after its first day).
    field
        A changeable field (`twin.model.changes.CHANGEABLE`), e.g. ``crews.dispatch`` or
        ``agencies.dishub.teams_per_kota``.
    value
        The new value: a number, or a policy name for ``crews.dispatch``.
    """

    date: str = ""
    field: str = ""
    value: float | str = 0.0


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


# Bounds beyond any plausible Jakarta: they stop absurd input with one line before it overflows a
# draw or exhausts memory (a simulated year at 1,000 reports a day peaks at 1.3 GB).
MAX_RUN_DAYS = 3660  # ten years, for the run and for each of warm-up and follow-up
MAX_REPORTS_PER_RUN = 5_000_000  # expected reports of a run (about 15 GB at the peak)
MAX_STAFF = 1000  # per kelurahan (desk staff, PPSU crews) or per kota (an agency's teams)
MAX_MINUTES = 525_600.0  # a year: the longest mean or sd of any duration
MAX_FACTOR = (
    100.0  # demand multipliers (flood day, holiday), and the daily coefficient of variation
)
FIRST_YEAR, LAST_YEAR = 1990, 2100  # the calendar (public holidays) a run may fall in


def check_at_most(name: str, value: float, limit: float, unit: str = "") -> None:
    """Refuse a value above `limit` (or NaN) with one line naming the field."""
    if not value <= limit:
        raise ScenarioError(f"{name} must be at most {limit:,g}{unit}, got {value:g}")


def check_non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ScenarioError(f"{name} must be a non-negative number, got {float(value):g}")


def check_share(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ScenarioError(f"{name} must be a share between 0 and 1, got {float(value):g}")
