"""Riding: how long a crew or team takes from one place to another, and how far it rode.

Within one travel region the time is the road network's shortest path (precomputed tables) times
the hour's congestion, plus the off-road legs at walking-a-motorbike speed; across regions, or to
a place off the network, it is the great-circle distance times the detour factor at the default
speed (by boat to and from Kepulauan Seribu). Distances are tallied once, vectorised, at the end.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

import numpy as np

from twin.city.roads import EARTH_RADIUS_M, haversine_m

if TYPE_CHECKING:
    import simpy
    from numpy.typing import NDArray

    from twin.city.assembly import City


class Located(Protocol):
    """Anything with a position: a crew, a job, a depot."""

    @property
    def node(self) -> int:
        """Road node (-1: off the network)."""

    @property
    def lon(self) -> float:
        """Longitude."""

    @property
    def lat(self) -> float:
        """Latitude."""

    @property
    def access_m(self) -> float:
        """Off-road metres from the node."""

    @property
    def seribu(self) -> bool:
        """In Kepulauan Seribu (reached by boat)."""


def metres(a: Located, b: Located) -> float:
    """Great-circle metres between two positions (scalar haversine: no numpy call overhead)."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin(math.radians(b.lon - a.lon) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


class Rider:
    """Ride times on the city's roads at the simulation's current hour, and a log of the legs.

    Parameters
    ----------
    env
        The SimPy environment (its clock sets the congestion hour).
    city
        The loaded city.
    travel
        False makes every ride instantaneous (verification runs).
    """

    def __init__(self, env: simpy.Environment, city: City, *, travel: bool) -> None:
        self.env = env
        s = city.speeds
        self.travel = travel
        self._congestion = list(s.congestion_by_hour)
        self._access_s_per_m = s.detour_factor / (s.access_speed_kph / 3.6)
        self._land_s_per_m = s.detour_factor / (s.default_speed_kph / 3.6)
        self._boat_s_per_m = 1.0 / (s.boat_speed_kph / 3.6)
        self._region, self._local, self._offset, self._size, self._flat = city.tables.lookup_lists()
        self._detour_km = s.detour_factor / 1000.0
        self._legs: list[tuple[int, float, float, float, float]] = []  # (report or -1, from, to)

    def ride_s(self, a: Located, b: Located) -> float:
        """Seconds to ride from where `a` is to where `b` is, at the current hour."""
        if not self.travel:
            return 0.0
        factor = self._congestion[int(self.env.now // 60) % 24]
        na, nb = a.node, b.node
        region = self._region
        if na >= 0 and nb >= 0 and region[na] == region[nb]:
            r = region[na]  # `TravelTables.time_s`, inlined on this hot path
            network_s = self._flat[
                self._offset[r] + self._local[na] * self._size[r] + self._local[nb]
            ]
            return network_s * factor + (a.access_m + b.access_m) * self._access_s_per_m
        m = metres(a, b)
        if a.seribu or b.seribu:
            return m * self._boat_s_per_m
        return m * self._land_s_per_m * factor

    def log_leg(self, report: int, a: Located, b: Located) -> None:
        """Remember a ride for the distance tally (`report` -1: not attributable to a report)."""
        if self.travel:
            self._legs.append((report, a.lon, a.lat, b.lon, b.lat))

    def add_up_km(self, per_report: NDArray[np.float64]) -> float:
        """Add each report's ridden km into `per_report`; return the km not attributable to one."""
        if not self._legs:
            return 0.0
        legs = np.array(self._legs)
        km = haversine_m(legs[:, 1], legs[:, 2], legs[:, 3], legs[:, 4]) * self._detour_km
        report = legs[:, 0].astype(np.int64)
        np.add.at(per_report, report[report >= 0], km[report >= 0])
        self._legs.clear()
        return float(km[report < 0].sum())
