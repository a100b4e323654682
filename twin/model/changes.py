"""Dated changes inside one run (``[[changes]]``): which fields may change, their checks, who applies them.

One registry, `CHANGEABLE`: each changeable field with the kind of value it takes and the part of
the model that applies it. A field is named by its path in the scenario file, an agency's with its
name in place of ``<name>`` (``agencies.dishub.teams_per_kota``, ``agencies.sda.handover.mean_min``):

- ``demand.reports_per_day`` (number >= 0): the demand model, the day's volume from the date;
- ``coordination.staff_per_kelurahan`` (whole >= 0): every desk takes the number at 00:00;
- ``coordination.agency_scale`` (number >= 0): the routing of reports submitted from the date;
- ``crews.dispatch`` (a policy name): an event at 00:00 gives every PPSU pool the new policy, and
  the jobs waiting move to its queue in their arrival order;
- ``agencies.<name>.teams_per_kota`` (whole >= 0): an event at 00:00 adds teams in each kota (at
  the kota base) or retires them (idle ones first; a busy one finishes the job in hand);
- ``agencies.<name>.handover.mean_min`` (minutes >= 0): the hand-over of the agency's reports
  coordinated from the date; each report's draw is rescaled (the coefficient of variation kept,
  the same uniform draws: common random numbers).

A change is checked against the scenario in force on its date (the base values with every change up
to that date), so every rule of the scenario holds on every day of the run; and an agency that has
received reports may not lose all its teams later (the jobs it holds would wait forever).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twin.errors import ScenarioError
from twin.model.parameters import DISPATCH_POLICIES, Distribution, check_non_negative

if TYPE_CHECKING:
    from twin.model.parameters import Change

Scenario = Any
"""A `twin.model.scenario.Scenario`, typed loosely: that module imports this one."""

NUMBER, WHOLE, POLICY = "number", "whole number", "policy name"
AGENCY = "<name>"


@dataclass(frozen=True, slots=True)
class Changeable:
    """A field that may take a new value from a date inside a run.

    Attributes
    ----------
    pattern
        The field's path; ``<name>`` stands for any agency of the scenario.
    kind
        ``number`` (>= 0), ``whole number`` (>= 0) or ``policy name`` (one of `DISPATCH_POLICIES`).
    applied_by
        The part of the model that applies it: ``demand`` and ``routing`` when reports are drawn,
        ``desk`` when the desks are solved, ``handover`` at each report's hand-over, and
        ``ppsu`` and ``agencies`` by an event at 00:00 of the date (`event`).
    event
        Applied by an event at 00:00 of the date, calling the stage's ``change(field, value)``.
    keep_cv
        The field is a distribution's mean: its sd moves with it (the coefficient of variation
        kept, so each report's draw is only rescaled).
    """

    pattern: str
    kind: str
    applied_by: str
    event: bool = False
    keep_cv: bool = False


CHANGEABLE: tuple[Changeable, ...] = (
    Changeable("demand.reports_per_day", NUMBER, "demand"),
    Changeable("coordination.staff_per_kelurahan", WHOLE, "desk"),
    Changeable("coordination.agency_scale", NUMBER, "routing"),
    Changeable("crews.dispatch", POLICY, "ppsu", event=True),
    Changeable(f"agencies.{AGENCY}.teams_per_kota", WHOLE, "agencies", event=True),
    Changeable(f"agencies.{AGENCY}.handover.mean_min", NUMBER, "handover", keep_cv=True),
)
_BY_PATTERN = {c.pattern: c for c in CHANGEABLE}


def pattern_of(name: str) -> str:
    """The registry pattern of a field: an agency's name becomes ``<name>``."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[0] == "agencies":
        return ".".join(["agencies", AGENCY, *parts[2:]])
    return name


def spec_of(name: str) -> Changeable:
    """The registry entry of a field already checked (`check_changes`)."""
    return _BY_PATTERN[pattern_of(name)]


def agency_of(name: str) -> str:
    """The agency an ``agencies.<name>...`` field is about."""
    return name.split(".")[1]


def value_of(s: Scenario, name: str) -> Any:
    """The scenario's own (base) value of field `name`."""
    obj: Any = s
    for part in name.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def schedule(s: Scenario, name: str) -> list[tuple[int, float | str]]:
    """``(day, value)`` of field `name` from day 0 on, one entry per change (day 0 first)."""
    start = dt.date.fromisoformat(s.run.start_date)
    steps: list[tuple[int, float | str]] = [(0, value_of(s, name))]
    steps.extend(
        ((dt.date.fromisoformat(c.date) - start).days, c.value)
        for c in sorted(s.changes, key=lambda c: c.date)
        if c.field == name
    )
    return steps


def _typed(spec: Changeable, value: float | str) -> Any:
    if spec.kind == WHOLE:
        return int(value)
    return str(value) if spec.kind == POLICY else float(value)


def _set(obj: Any, parts: list[str], value: Any, spec: Changeable) -> Any:
    """`obj` with the field at `parts` set to `value` (new objects along the path)."""
    head, rest = parts[0], parts[1:]
    if isinstance(obj, dict):
        return {**obj, head: _set(obj[head], rest, value, spec)}
    if rest:
        return dataclasses.replace(obj, **{head: _set(getattr(obj, head), rest, value, spec)})
    if spec.keep_cv and isinstance(obj, Distribution):
        sd = obj.sd_min * value / obj.mean_min if obj.mean_min > 0 else obj.sd_min
        return dataclasses.replace(obj, mean_min=value, sd_min=sd)
    return dataclasses.replace(obj, **{head: value})


def with_changes(s: Scenario, changes: list[Change] | tuple[Change, ...]) -> Scenario:
    """`s` with `changes` made to its base values (in the order given), validated once."""
    groups: dict[str, Any] = {}
    for change in changes:
        spec = spec_of(change.field)
        head, *rest = change.field.split(".")
        current = groups.get(head, getattr(s, head))
        groups[head] = _set(current, rest, _typed(spec, change.value), spec)
    return dataclasses.replace(s, **groups) if groups else s


# --- checks ------------------------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as a scenario file would spell it (2.0 -> 2, a string quoted)."""
    return f"{value:g}" if isinstance(value, int | float) else repr(value)


def _field_names() -> str:
    return ", ".join(c.pattern for c in CHANGEABLE)


def _check_entry(s: Scenario, where: str, change: Change) -> None:
    """The field is changeable and the value of its kind (one line naming the entry)."""
    name, value = change.field, change.value
    spec = _BY_PATTERN.get(pattern_of(name))
    if spec is None:
        raise ScenarioError(
            f"{where}.field: {name!r} cannot change within a run; choose from {_field_names()}"
        )
    if AGENCY in spec.pattern and agency_of(name) not in s.agencies:
        raise ScenarioError(
            f"{where}.field: unknown agency {agency_of(name)!r} in {name!r}; choose from {', '.join(s.agencies)}"
        )
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    got = f"the number {value:g}" if is_number else f"the string {value!r}"
    if not isinstance(value, str) and not is_number:
        got = repr(value)
    if spec.kind == POLICY:
        if not isinstance(value, str):
            raise ScenarioError(
                f"{where}.value: {name} takes a policy name ({', '.join(DISPATCH_POLICIES)}), got {got}"
            )
        if value not in DISPATCH_POLICIES:
            raise ScenarioError(
                f"{where}.value: {name}: unknown policy {value!r}; choose from {', '.join(DISPATCH_POLICIES)}"
            )
        return
    if not is_number:
        raise ScenarioError(f"{where}.value: {name} takes a {spec.kind}, got {got}")
    check_non_negative(f"{where}.value", float(value))
    if spec.kind == WHOLE and value != int(value):
        raise ScenarioError(f"{where}.value: {name} takes a whole number, got {value!r}")
    if spec.keep_cv and value_of(s, name.rsplit(".", 1)[0]).mean_min == 0:
        raise ScenarioError(
            f"{where}.field: {name} cannot change: the scenario's mean is 0, a delay with no scale to keep; give it a mean above 0"
        )


def receiving(s: Scenario) -> dict[str, str]:
    """Agencies the routing sends reports to, each with one category that does so."""
    scale = s.coordination.agency_scale
    out: dict[str, str] = {}
    for category, weight in s.demand.categories.items():
        if weight <= 0 or category not in s.routing:
            continue
        for dest, share in s.routing[category].items():
            if dest != "ppsu" and share * scale > 0:
                out.setdefault(dest, category)
    return out


def check_changes(s: Scenario) -> None:
    """Check every ``[[changes]]`` entry: its date, field and value, then the scenario in force
    from each date on. Raises `ScenarioError` with one line naming the entry."""
    start = dt.date.fromisoformat(s.run.start_date)
    last = start + dt.timedelta(days=s.run.days - 1)
    for i, change in enumerate(s.changes):
        where = f"changes[{i}]"
        try:
            day = dt.date.fromisoformat(change.date)
        except (TypeError, ValueError):
            raise ScenarioError(f"{where}.date: not an ISO date, got {change.date!r}") from None
        if not start < day <= last:
            raise ScenarioError(
                f"{where}.date: {change.date} is outside the run (after {start} up to {last})"
            )
        _check_entry(s, where, change)
    if not s.changes:
        return
    state = dataclasses.replace(s, changes=())
    received = receiving(state)  # agency -> a category it has received reports of
    ordered = sorted(enumerate(s.changes), key=lambda ic: ic[1].date)
    for date, group in itertools.groupby(ordered, key=lambda ic: ic[1].date):
        entries = list(group)
        names = ", ".join(f"changes[{i}]" for i, _ in entries)
        try:
            state = with_changes(state, [c for _, c in entries])
        except ScenarioError as exc:
            what = ", ".join(f"{c.field} = {_show(c.value)}" for _, c in entries)
            raise ScenarioError(f"{names} ({what} from {date}): {exc}") from None
        for i, change in entries:
            if pattern_of(change.field) != f"agencies.{AGENCY}.teams_per_kota":
                continue
            agency = agency_of(change.field)
            if state.agencies[agency].teams_per_kota == 0 and agency in received:
                raise ScenarioError(
                    f"changes[{i}].value: {change.field} = 0 from {date}, but routing.{received[agency]} sends {agency} reports before it (they would wait forever)"
                )
        received = {**receiving(state), **received}


def event_changes(s: Scenario) -> list[tuple[float, Changeable, str, float | str]]:
    """The changes applied by an event: ``(minute, entry, field, value)`` in date order."""
    start = dt.date.fromisoformat(s.run.start_date)
    out = []
    for change in sorted(s.changes, key=lambda c: c.date):
        spec = spec_of(change.field)
        if spec.event:
            minute = (dt.date.fromisoformat(change.date) - start).days * 1440.0
            out.append((minute, spec, change.field, change.value))
    return out
