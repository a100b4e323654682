"""Agencies (OPD): reports the desk hands to a Dinas, closed after the agency's delay."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


def agency_closed_min(
    coordinated: NDArray[np.float64], agency_min: NDArray[np.float64]
) -> NDArray[np.float64]:
    """When each agency report closes: its hand-over plus the agency's delay."""
    return coordinated + agency_min
