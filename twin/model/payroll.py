"""What a scenario's staff cost a month: desk officers, agency field teams and PPSU crews.

The headcount comes from the same staffing rules and tables the model runs with
(`twin.model.staffing`) and the prices from the scenario's ``[costs]`` (`twin.model.costs`), so
the cost beside a KPI is the cost of the staff that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from twin.model.staffing import desk_staff, ppsu_crews

if TYPE_CHECKING:
    from twin.city.assembly import City
    from twin.model.scenario import Scenario


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
    desks = int(desk_staff(city, scenario).sum())
    crews = int(ppsu_crews(city, scenario).sum())
    kota = int(city.table["kota"].nunique())
    teams = kota * sum(a.teams_per_kota for a in scenario.agencies.values())
    c = scenario.costs
    return StaffCost(
        desks, teams, crews, desks * c.desk_officer, teams * c.agency_team, crews * c.ppsu_crew
    )
