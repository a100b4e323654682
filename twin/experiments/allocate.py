"""The search of `twin allocate`: start, greedy rounds on the simulation, ranking and selection.

The methods are described in `twin.experiments.allocation`; this module runs them in order and
returns the evaluated allocations (today's, a uniform one of the same budget, the chosen one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.errors import ScenarioError
from twin.experiments import allocation as al
from twin.experiments.statistics import PRACTICAL_THRESHOLDS

if TYPE_CHECKING:
    from pathlib import Path

    from twin.city.assembly import City
    from twin.experiments.replications import Runner
    from twin.model.scenario import Scenario

SELECTION_FIRST = 500  # the selection and the final comparison use fresh replications, not
FINAL_FIRST = 1000  # those the rounds ranked the candidates by (no winner's curse)


@dataclass(slots=True)
class Search:
    """What one `twin allocate` needs."""

    scenario: Scenario
    budget: al.Budget
    targets: tuple[str, ...]
    replications: int = 3
    rounds: int = 4
    candidates: int = 2  # sim-tools' KN looks up the variance of differences right for two
    alpha: float = 0.05
    max_selection_replications: int = 12
    log: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Outcome:
    """The chosen allocation and its rivals, each evaluated on the same fresh replications."""

    chosen: al.Evaluation
    today: al.Evaluation
    uniform: al.Evaluation
    start: al.Allocation
    prices: al.Prices
    rounds: list[dict[str, Any]]
    selection: dict[str, Any]
    log: list[str]


class _Designs:
    """The candidate allocations as sim-tools' KN expects a model: ``simulate(design)`` runs
    that design's next replication and reports ``breaches + spend / budget`` to the observers.
    Replication r of every design is run together (one batch), on common random numbers."""

    def __init__(
        self, runner: Runner, evals: list[al.Evaluation], search: Search, p: al.Prices
    ) -> None:
        self.runner, self.evals, self.search, self.prices = runner, evals, search, p
        self.observers: list[Any] = []
        self.done = [0] * len(evals)
        self.cache: dict[tuple[int, int], float] = {}
        self.runs = 0

    def register_observer(self, observer: Any) -> None:
        self.observers.append(observer)

    def simulate(self, design: int) -> None:
        r = self.done[design]
        if r >= self.search.max_selection_replications:
            raise _CapReachedError
        self.done[design] += 1
        if (design, r) not in self.cache:  # fresh replications: not those that ranked them
            batch = al.evaluate(self.runner, [e.scenario for e in self.evals],
                                [e.allocation for e in self.evals], 1, self.search.targets,
                                first=SELECTION_FIRST + r)  # fmt: skip
            self.runs += len(batch)
            for i, e in enumerate(batch):
                self.cache[(i, r)] = float(e.breaches[0])
        value = (
            self.cache[(design, r)]
            + self.prices.spend(self.evals[design].allocation) / self.search.budget.amount
        )
        for o in self.observers:
            o.feedback(self, design, value)


class _CapReachedError(Exception):
    """The selection reached its replication cap before one design was left."""


def select(
    runner: Runner, evals: list[al.Evaluation], search: Search, p: al.Prices
) -> tuple[int, dict[str, Any]]:
    """KN (Kim and Nelson, sim-tools) between the two best `evals` (indifference zone: half a
    breach); index of the chosen one. KN screens on the variance of the paired differences, so
    common random numbers make it quick; sim-tools' lookup of that variance is right for two
    designs (for three or more it can read another pair's), hence two candidates."""
    from sim_tools.ovs.indifference_zone import KN

    if len(evals) == 1:
        return 0, {"procedure": "none (one candidate)", "replications": search.replications}
    evals = evals[:2]
    designs = _Designs(runner, evals, search, p)
    kn = KN(designs, len(evals), delta=0.5, alpha=search.alpha, n_0=2, obj="min")
    try:
        chosen = int(kn.solve()[0])
        proven = True
    except _CapReachedError:  # pick the best sample mean left in contention, and say so
        left = [int(i) for i in kn._contenders]
        chosen = max(left, key=lambda i: kn._means[i])  # means are negated for "min"
        proven = False
    return chosen, {
        "procedure": "KN (sim-tools), indifference zone 0.5 breach",
        "alpha": search.alpha, "proven": proven, "replications": max(designs.done),
        "means": [float(-m) for m in kn._means], "extra_runs": designs.runs,
    }  # fmt: skip


def run_search(search: Search, city: City, runner: Runner, folder: Path) -> Outcome:
    """Start, improve, select, then evaluate today, uniform and the chosen on fresh replications."""
    s = search.scenario
    codes = city.kelurahan.codes
    kota = int(city.table["kota"].nunique())
    p = al.prices(s, search.budget, kota)
    now = al.today(city, s)
    start = al.queueing_start(city, s)
    floor = al.minimum(start)
    least = p.spend(floor)
    if search.budget.amount < least:
        raise ScenarioError(
            f"--budget {search.budget}: below the least staffing the scenario allows "
            f"({al.Budget(least, search.budget.idr)}: one desk officer and one crew per kelurahan "
            "with reports, one team per agency and kota)"
        )
    first = al.fit_to_budget(start, floor, search.budget.amount, p)
    log = [f"queueing start: {int(start.desks.sum())} desk officers, {int(start.crews.sum())} crews, "
           f"{sum(start.teams.values())} teams per kota; fitted to the budget: "
           f"{int(first.desks.sum())}, {int(first.crews.sum())}, {sum(first.teams.values())}"]  # fmt: skip

    def run(
        allocs: list[al.Allocation], tags: list[str], reps: int, at: int = 0
    ) -> list[al.Evaluation]:
        scenarios = [
            al.as_scenario(s, a, codes, folder, t) for a, t in zip(allocs, tags, strict=True)
        ]
        return al.evaluate(runner, scenarios, allocs, reps, search.targets, first=at)

    current = run([first], ["round0"], search.replications)[0]
    history = [current]
    rounds = [_round_row(0, current, p, search)]
    for n in range(1, search.rounds + 1):
        trial = _trial(current, floor, search, p, codes)
        if trial is None:
            log.append(f"round {n}: nothing left to change")
            break
        tried = run([trial], [f"trial{n}"], search.replications)[0]
        merged = _merge(current, tried, search, p, codes)
        if merged.key() == current.allocation.key():
            log.append(f"round {n}: no change improved a kelurahan by its practical threshold")
            break
        current = run([merged], [f"round{n}"], search.replications)[0]
        history.append(current)
        rounds.append(_round_row(n, current, p, search))
    ranked = sorted(history, key=lambda e: (e.breaches.mean(), p.spend(e.allocation)))
    distinct: list[al.Evaluation] = []
    for e in ranked:
        if all(e.allocation.key() != d.allocation.key() for d in distinct):
            distinct.append(e)
    candidates = distinct[: search.candidates]
    index, selection = select(runner, candidates, search, p)
    chosen = candidates[index].allocation
    uniform = uniform_allocation(chosen, floor, p)
    final = run([chosen, now, uniform], ["chosen", "today", "uniform"], search.replications,
                at=FINAL_FIRST)  # fmt: skip
    return Outcome(final[0], final[1], final[2], start, p, rounds, selection, log)


def _round_row(n: int, e: al.Evaluation, p: al.Prices, search: Search) -> dict[str, Any]:
    return {"round": n, "breaches": float(e.breaches.mean()), "spend": p.spend(e.allocation),
            "desk officers": int(e.allocation.desks.sum()), "crews": int(e.allocation.crews.sum())}  # fmt: skip


def _ordered(e: al.Evaluation, codes: np.ndarray, column: str) -> np.ndarray:
    return e.means[column].reindex(codes).to_numpy(dtype=float)


def _ratios(e: al.Evaluation, search: Search, codes: np.ndarray) -> dict[str, np.ndarray]:
    """Each target's KPI over its limit per kelurahan (> 1: missed; NaN: no report)."""
    s = e.scenario
    return {t: _ordered(e, codes, al.TARGETS[t][0]) / getattr(s.targets, al.TARGETS[t][1])
            for t in search.targets}  # fmt: skip


def _worst(ratios: dict[str, np.ndarray]) -> np.ndarray:
    """Per kelurahan, its worst KPI-over-target ratio (-inf: no report, nothing to judge)."""
    stacked = np.nan_to_num(np.vstack(list(ratios.values())), nan=-np.inf)
    return np.asarray(stacked.max(axis=0), dtype=float)


def _trial(current: al.Evaluation, floor: al.Allocation, search: Search, p: al.Prices,
           codes: np.ndarray) -> al.Allocation | None:  # fmt: skip
    """One more unit where a target is missed (worst first), paid from the budget left, then
    from the kelurahan with the most slack; with nothing missed, one unit less where the slack
    is largest (least cost)."""
    a = current.allocation
    desks, crews = a.desks.copy(), a.crews.copy()
    ratios = _ratios(current, search, codes)
    worst = _worst(ratios)
    desk_missed = np.zeros(len(codes), dtype=bool)
    for t, r in ratios.items():
        if al.TARGETS[t][2] == "desk":
            desk_missed |= np.nan_to_num(r) > 1
    need = np.flatnonzero(worst > 1)
    need = need[np.argsort(-worst[need])]
    slack = np.flatnonzero(np.isfinite(worst) & (worst < 0.8))
    slack = slack[np.argsort(worst[slack])]
    # donors when the budget is spent: the most slack first, then any kelurahan with staff
    # above the floor (the merge keeps a move only where the donor loses less than it gains)
    spare = np.flatnonzero(np.isfinite(worst) & ((crews > floor.crews) | (desks > floor.desks)))
    spare = spare[np.argsort(worst[spare], kind="stable")]
    if len(need) == 0:  # everything met: try to save
        for k in slack:
            if crews[k] > floor.crews[k]:
                crews[k] -= 1
            elif desks[k] > floor.desks[k]:
                desks[k] -= 1
        trial = al.Allocation(desks, crews, dict(a.teams))
        return None if trial.key() == a.key() else trial
    money = search.budget.amount - p.spend(a)
    donors = iter(spare)
    for k in need:
        price = p.desk if desk_missed[k] else p.crew
        while money < price:
            d = next(donors, None)
            if d is None:
                break
            if crews[d] > floor.crews[d]:
                crews[d] -= 1
                money += p.crew
            elif desks[d] > floor.desks[d]:
                desks[d] -= 1
                money += p.desk
        if money < price:
            break
        if desk_missed[k]:
            desks[k] += 1
        else:
            crews[k] += 1
        money -= price
    trial = al.Allocation(desks, crews, dict(a.teams))
    return None if trial.key() == a.key() else trial


def _merge(current: al.Evaluation, tried: al.Evaluation, search: Search, p: al.Prices,
           codes: np.ndarray) -> al.Allocation:  # fmt: skip
    """Keep a kelurahan's change only where it paid: a unit added must improve the KPI it was for
    by its practical threshold; a unit taken must leave the kelurahan meeting every target, or
    its KPI worse by less than that threshold.
    Kelurahan-pooled desks and crews make kelurahan independent, so the changes combine."""
    a, b = current.allocation, tried.allocation
    desks, crews = a.desks.copy(), a.crews.copy()
    after = _ratios(tried, search, codes)
    met_after = _worst(after) <= 1
    gains = []
    for stage, column, old, new in (("desk", "mean_coordination_h", a.desks, b.desks),
                                    ("crew", "mean_resolution_h", a.crews, b.crews)):  # fmt: skip
        before_kpi = _ordered(current, codes, column)
        after_kpi = _ordered(tried, codes, column)
        gain = np.nan_to_num(before_kpi - after_kpi)
        target = desks if stage == "desk" else crews
        for k in np.flatnonzero(new > old):
            if gain[k] >= PRACTICAL_THRESHOLDS[column]:
                target[k] = new[k]
                gains.append((gain[k], stage, k))
        for k in np.flatnonzero(new < old):  # a donor: still meeting, or barely worse
            if met_after[k] or -gain[k] < PRACTICAL_THRESHOLDS[column]:
                target[k] = new[k]
    merged = al.Allocation(desks, crews, dict(a.teams))
    for _, stage, k in sorted(gains):  # over budget (a donor kept its unit): drop the least gain
        if p.spend(merged) <= search.budget.amount:
            break
        (merged.desks if stage == "desk" else merged.crews)[k] -= 1
    return merged


def uniform_allocation(chosen: al.Allocation, floor: al.Allocation, p: al.Prices) -> al.Allocation:
    """The same desk officers, crews and teams in total, spread evenly over the kelurahan with
    reports (largest remainders): the plain alternative the chosen one must beat."""
    active = floor.desks > 0
    n = int(active.sum())

    def spread(total: int) -> np.ndarray:
        each = np.zeros(len(active), dtype=np.int64)
        each[active] = total // n
        extra = np.flatnonzero(active)[: total - (total // n) * n]
        each[extra] += 1
        return each

    return al.Allocation(spread(int(chosen.desks.sum())), spread(int(chosen.crews.sum())),
                         dict(chosen.teams))  # fmt: skip
