"""Motorbike speeds on Jakarta's streets: the assumptions behind every travel time.

PPSU crews ride motorbikes (and small trucks for bulky work), so free-flow speeds are set per OSM
highway class for a motorbike in city traffic, and a time-of-day factor stretches every travel time
in the peaks. These are assumptions, not measurements: a scenario may override any of them
(``[city.speeds_kph]``, ``[city] congestion_by_hour``), and `docs/model.md` lists them.

Off-network legs (a report point to its nearest road node; whole kelurahan with no mapped road)
use the straight-line distance times a detour factor at a set speed; the Kepulauan Seribu islands
are reached by boat.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from twin.errors import ScenarioError

# Free-flow motorbike speeds in km/h by OSM highway class (assumed; Jakarta's inner-city averages
# are 20-25 km/h, toll roads allow motorbikes nowhere but we keep them for completeness).
DEFAULT_SPEEDS_KPH: dict[str, float] = {
    "motorway": 60.0,
    "motorway_link": 40.0,
    "trunk": 45.0,
    "trunk_link": 35.0,
    "primary": 35.0,
    "primary_link": 30.0,
    "secondary": 30.0,
    "secondary_link": 25.0,
    "tertiary": 25.0,
    "tertiary_link": 22.0,
    "unclassified": 20.0,
    "road": 20.0,
    "residential": 18.0,
    "living_street": 12.0,
    "service": 12.0,
    "track": 10.0,
}

# Multipliers on travel time by hour of day (0-23): morning and evening peaks, as in Jakarta's
# published congestion index (TomTom ranks the 18:00 peak the worst). Assumed.
DEFAULT_CONGESTION_BY_HOUR: tuple[float, ...] = (
    1.0, 1.0, 1.0, 1.0, 1.0, 1.1,  # 00-05
    1.4, 1.7, 1.7, 1.4, 1.2, 1.2,  # 06-11
    1.2, 1.2, 1.2, 1.3, 1.5, 1.8,  # 12-17
    1.8, 1.6, 1.3, 1.2, 1.1, 1.0,  # 18-23
)  # fmt: skip

# Road classes a motorbike cannot use (or that are not yet roads).
NON_DRIVABLE = frozenset({"footway", "path", "pedestrian", "construction", "steps", "cycleway"})


@dataclass(frozen=True, slots=True)
class SpeedSettings:
    """Speeds and detours that turn road lengths and straight lines into seconds.

    Attributes
    ----------
    speeds_kph
        Free-flow motorbike speed per highway class, km/h.
    default_speed_kph
        Speed for a class not in `speeds_kph`, km/h.
    congestion_by_hour
        24 multipliers on travel time, one per hour of the day.
    access_speed_kph
        Speed on the off-network leg between a point and its nearest road node, km/h.
    detour_factor
        Road distance over straight-line distance where no road is mapped.
    boat_speed_kph
        Speed of the boats that serve Kepulauan Seribu, km/h.
    """

    speeds_kph: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SPEEDS_KPH))
    default_speed_kph: float = 18.0
    congestion_by_hour: tuple[float, ...] = DEFAULT_CONGESTION_BY_HOUR
    access_speed_kph: float = 10.0
    detour_factor: float = 1.4
    boat_speed_kph: float = 25.0

    def __post_init__(self) -> None:
        for name, kph in self.speeds_kph.items():
            _check_positive(f"city.speeds_kph.{name}", kph)
        for name in ("default_speed_kph", "access_speed_kph", "boat_speed_kph"):
            _check_positive(f"city.{name}", getattr(self, name))
        if not 1.0 <= self.detour_factor <= 10.0:  # also refuses NaN
            msg = f"city.detour_factor must be between 1 and 10, got {self.detour_factor}"
            raise ScenarioError(msg)
        if len(self.congestion_by_hour) != 24:
            msg = f"city.congestion_by_hour must have 24 values, got {len(self.congestion_by_hour)}"
            raise ScenarioError(msg)
        for hour, factor in enumerate(self.congestion_by_hour):
            if not 1.0 <= factor <= 100.0:
                msg = f"city.congestion_by_hour[{hour}] must be between 1 and 100 (a slow-down), got {factor}"
                raise ScenarioError(msg)

    def speed_kph(self, highway: str) -> float:
        """Free-flow speed of one highway class, km/h."""
        return self.speeds_kph.get(highway, self.default_speed_kph)

    def network_digest(self) -> str:
        """Hash of the settings that change edge travel times (congestion applies later)."""
        key = {"speeds": sorted(self.speeds_kph.items()), "default": self.default_speed_kph}
        return hashlib.sha1(json.dumps(key).encode(), usedforsecurity=False).hexdigest()

    def as_dict(self) -> dict[str, object]:
        """Plain dict for reports and JSON output."""
        return asdict(self)


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0 < value <= 1000):  # also refuses NaN and inf
        msg = f"{name} must be a positive speed up to 1000 km/h, got {value!r}"
        raise ScenarioError(msg)
