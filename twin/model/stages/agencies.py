"""Agencies (OPD): reports the desk hands to a Dinas, closed after the agency's delay."""

from __future__ import annotations


def agency_closed_min(coordinated: float, agency_min: float) -> float:
    """When each agency report closes: its hand-over plus the agency's delay."""
    return coordinated + agency_min
