"""What a scenario's staff cost: desk officers, agency field teams and PPSU crews, per month.

Prices are scenario fields (``[costs]``, in IDR per month); the headcount comes from the same
staffing rules and tables the model runs with (`twin.model.staffing`), so the cost beside a
KPI is the cost of the staff that produced it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twin.errors import ScenarioError

if TYPE_CHECKING:
    from twin.city.assembly import City
    from twin.model.scenario import Scenario

COST_UNIT = "IDR per month"
# DKI Jakarta's provincial minimum wage (UMP), IDR per month, by year (Pergub / Kepgub DKI)
UMP_DKI = {2016: 3_100_000.0, 2020: 4_276_349.0, 2024: 5_067_381.0}


@dataclass(frozen=True, slots=True)
class CostParams:
    """Monthly cost of each kind of staff (``[costs]``).

    Attributes
    ----------
    unit
        Must be ``"IDR per month"`` (stated so that a figure in another currency or period is
        refused rather than mixed in).
    desk_officer
        One kelurahan desk officer (coordination staff). Assumed: twice the UMP (a civil
        servant's pay with Jakarta's regional allowance, TKD, is not published per post).
    agency_team
        One agency field team of a kota (Suku Dinas). Assumed: four field workers (PJLP) at the
        UMP plus one UMP for the vehicle and fuel, 5 x UMP.
    ppsu_crew
        One PPSU worker answering reports. PPSU are contract workers paid the UMP (2024:
        5,067,381 IDR).
    source
        Where the prices come from (shown in the reports).
    """

    unit: str = COST_UNIT
    desk_officer: float = 2 * UMP_DKI[2024]
    agency_team: float = 5 * UMP_DKI[2024]
    ppsu_crew: float = UMP_DKI[2024]
    source: str = (
        "PPSU: DKI Jakarta minimum wage (UMP) 2024; desk officer (2 x UMP) and agency team "
        "(5 x UMP) assumed"
    )

    def __post_init__(self) -> None:
        if self.unit != COST_UNIT:
            raise ScenarioError(
                f"costs.unit: {self.unit!r} is not supported; give every cost in {COST_UNIT!r}"
            )
        for name in ("desk_officer", "agency_team", "ppsu_crew"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ScenarioError(
                    f"costs.{name} must be a non-negative number of IDR per month, got {value!r}"
                )


@dataclass(frozen=True, slots=True)
class StaffCost:
    """Headcount and monthly cost of a scenario's staff at the start of its run."""

    desk_officers: int
    agency_teams: int
    ppsu_crews: int
    desk_idr: float
    agency_idr: float
    ppsu_idr: float

    @property
    def total_idr(self) -> float:
        """The whole staff, IDR per month."""
        return self.desk_idr + self.agency_idr + self.ppsu_idr

    def as_dict(self) -> dict[str, float]:
        """Counts and costs as flat fields (``staff_cost_idr`` is the total)."""
        return {
            "desk_officers": self.desk_officers,
            "agency_teams": self.agency_teams,
            "ppsu_crews": self.ppsu_crews,
            "desk_cost_idr": self.desk_idr,
            "agency_cost_idr": self.agency_idr,
            "ppsu_cost_idr": self.ppsu_idr,
            "staff_cost_idr": self.total_idr,
        }


def staff_cost(city: City, scenario: Scenario) -> StaffCost:
    """The staff `scenario` puts on `city` (its rules and tables) and their monthly cost.

    Dated changes (``[[changes]]``) are not costed: this is the staffing of the run's start.
    """
    from twin.model.staffing import desk_staff, ppsu_crews

    desks = int(desk_staff(city, scenario).sum())
    crews = int(ppsu_crews(city, scenario).sum())
    kota = int(city.table["kota"].nunique())
    teams = kota * sum(a.teams_per_kota for a in scenario.agencies.values())
    c = scenario.costs
    return StaffCost(
        desks, teams, crews, desks * c.desk_officer, teams * c.agency_team, crews * c.ppsu_crew
    )
