"""The kelurahan coordination desk (Koordinasi, the 6-hour clock)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from twin.model.scenario import Scenario


def coordination_done_min(
    received: NDArray[np.float64], handling: NDArray[np.float64], scenario: Scenario
) -> NDArray[np.float64]:
    """When each report is coordinated: the desk's next open moment, plus the handling time."""
    c = scenario.coordination
    if not c.enabled:
        return received.copy()
    day = np.floor(received / 1440.0)
    minute = received - day * 1440.0
    open_m, close_m = c.office_open_h * 60, c.office_close_h * 60
    start = np.where(
        minute < open_m,
        day * 1440 + open_m,
        np.where(minute >= close_m, (day + 1) * 1440 + open_m, received),
    )
    return start + handling
