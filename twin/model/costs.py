"""The prices of staff (``[costs]`` of a scenario): desk officer, agency team, PPSU crew, in IDR
per month. What a scenario's staff then cost is `twin.model.payroll`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from twin.errors import ScenarioError

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
