"""Errors the twin raises on bad input: each carries one readable line for the user."""

from __future__ import annotations


class TwinError(Exception):
    """Base of every error the `twin` command turns into one line and exit code 2."""


class DataError(TwinError):
    """A Jakarta input file is missing or malformed; the message names the file."""


class CoordinateError(TwinError, ValueError):
    """A coordinate is NaN, out of range, or looks like lon and lat were swapped."""


class ScenarioError(TwinError, ValueError):
    """A scenario file names an unknown field, a wrong type or an impossible value."""
