"""Staff under a budget (`twin allocate`): where desk officers, PPSU crews and agency teams go.

Three steps, each with a maintained method behind it:

1. **Queueing start.** Square-root staffing (Halfin-Whitt: c = a + beta * sqrt(a), the Erlang-C
   rule of thumb for a wait probability around 20 %) per stage from the offered load a of the
   scenario's demand: each kelurahan's desk over its opening hours, its PPSU crews over their
   shifts, each agency's teams over the kota with the most load. Scaled down to the budget when
   it cannot pay for it (never below the minimum: one desk officer and one crew per kelurahan
   with reports, one team per agency and kota).
2. **Greedy marginal improvement with the simulation.** Desks and crews serve their own
   kelurahan, so one replicated city-wide run measures every kelurahan's marginal change at
   once: each round gives one more desk officer (coordination missed) or crew (resolution
   missed) to the kelurahan missing a target, paid from the budget left or from kelurahan with
   the most slack, and keeps a change only where the common-random-number replications show
   the missed KPI improved by at least its practical threshold (and the donor still meets).
3. **Ranking and selection.** The best allocations of the rounds are close; KN (Kim and
   Nelson, from ``sim-tools``) picks the one with the fewest expected breaches (plus its cost
   as a share of the budget, a tie-break below one breach) with probability >= 1 - alpha of
   being within the indifference zone of the best, on common random numbers.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.errors import ScenarioError
from twin.experiments.replications import Task

if TYPE_CHECKING:
    from pathlib import Path

    from numpy.typing import NDArray

    from twin.city.assembly import City
    from twin.experiments.replications import ReplicationResult, Runner
    from twin.model.scenario import Scenario

# target -> (kelurahan KPI judged, field of the scenario's targets, the stage that moves it)
TARGETS = {
    "coordination_mean_6h": ("mean_coordination_h", "coordination_mean_h", "desk"),
    "resolution_mean_7d": ("mean_resolution_h", "resolution_mean_h", "crew"),
    "benchmark_resolution_9h": ("mean_resolution_h", "benchmark_resolution_h", "crew"),
}
BETA = 1.0  # square-root staffing's safety factor
TRAVEL_H = 0.3  # assumed mean ride to a job, for the queueing start only


@dataclass(frozen=True, slots=True)
class Budget:
    """A budget: a number of staff positions (desk officers + crews + agency teams) or IDR a
    month."""

    amount: float
    idr: bool

    def __str__(self) -> str:
        return f"{self.amount:,.0f} IDR a month" if self.idr else f"{self.amount:,.0f} staff"


def parse_budget(text: str) -> Budget:
    """``2600`` (staff positions), ``10.5bn IDR``, ``10500000000IDR`` or ``450M IDR``."""
    raw = text.strip().replace(",", "").replace("_", "")
    m = re.fullmatch(r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(tn|bn|m|k)?\s*(idr)?", raw, re.I)
    if not m:
        raise ScenarioError(
            f"--budget {text!r}: expected a number of staff (2600) or IDR a month (10.5bn IDR)"
        )
    value = float(m.group(1)) * {"tn": 1e12, "bn": 1e9, "m": 1e6, "k": 1e3}.get(
        (m.group(2) or "").lower(), 1.0
    )
    idr = bool(m.group(3))
    if m.group(2) and not idr:
        raise ScenarioError(f"--budget {text!r}: a sum needs its currency, e.g. {text} IDR")
    if not (math.isfinite(value) and value > 0):
        raise ScenarioError(f"--budget {text!r}: must be more than zero")
    if not idr and value != int(value):
        raise ScenarioError(f"--budget {text!r}: a number of staff must be whole")
    return Budget(value, idr)


def check_targets(targets: list[str] | None) -> tuple[str, ...]:
    """The targets to meet (default the two SLAs); an unknown one is refused."""
    chosen = tuple(targets or ("coordination_mean_6h", "resolution_mean_7d"))
    for t in chosen:
        if t not in TARGETS:
            raise ScenarioError(f"--target {t}: not a target (choose from {', '.join(TARGETS)})")
    return chosen


@dataclass(frozen=True, slots=True)
class Allocation:
    """Staff per kelurahan (desk officers, PPSU crews; in the city's code order) and teams per
    kota of each agency."""

    desks: NDArray[np.int64]
    crews: NDArray[np.int64]
    teams: dict[str, int]

    def key(self) -> tuple[Any, ...]:
        return (self.desks.tobytes(), self.crews.tobytes(), tuple(sorted(self.teams.items())))


@dataclass(frozen=True, slots=True)
class Prices:
    """What one unit of each kind costs against the budget, and the number of kota."""

    desk: float
    crew: float
    team: float
    kota: int

    def spend(self, a: Allocation) -> float:
        """The allocation's use of the budget."""
        teams = self.kota * sum(a.teams.values())
        return float(a.desks.sum() * self.desk + a.crews.sum() * self.crew + teams * self.team)


def prices(scenario: Scenario, budget: Budget, kota: int) -> Prices:
    """Unit prices against `budget`: IDR a month, or one position each."""
    c = scenario.costs
    if budget.idr:
        return Prices(c.desk_officer, c.ppsu_crew, c.agency_team, kota)
    return Prices(1.0, 1.0, 1.0, kota)


def today(city: City, scenario: Scenario) -> Allocation:
    """The scenario's own staffing (its rules and tables)."""
    from twin.model.staffing import desk_staff, ppsu_crews

    teams = {name: a.teams_per_kota for name, a in scenario.agencies.items()}
    return Allocation(desk_staff(city, scenario), ppsu_crews(city, scenario), teams)


def _sqrt_staffing(load: NDArray[np.float64]) -> NDArray[np.int64]:
    return np.ceil(load + BETA * np.sqrt(load)).astype(np.int64)


def _routed_shares(scenario: Scenario) -> dict[str, float]:
    """Share of all reports going to PPSU and to each agency (category mix x routing)."""
    mix = scenario.demand.categories
    total = sum(mix.values()) or 1.0
    out: dict[str, float] = {}
    scale = scenario.coordination.agency_scale
    for cat, w in mix.items():
        route = scenario.routing.get(cat, {"ppsu": 1.0})
        agencies = {d: s * scale for d, s in route.items() if d != "ppsu"}
        moved = min(sum(agencies.values()), 1.0)
        for d, s in agencies.items():
            out[d] = out.get(d, 0.0) + w / total * s
        out["ppsu"] = out.get("ppsu", 0.0) + w / total * (1.0 - moved)
    return out


def _work_h(scenario: Scenario, destination: str) -> float:
    """Mean on-site work of the categories routed to `destination`, hours."""
    weights = {c: w * scenario.routing.get(c, {"ppsu": 1.0}).get(destination, 0.0)
               for c, w in scenario.demand.categories.items()}  # fmt: skip
    total = sum(weights.values())
    work = scenario.crews.work
    if total == 0:
        return 1.0
    return sum(w * work[c].mean_min for c, w in weights.items() if c in work) / total / 60.0


def queueing_start(city: City, scenario: Scenario) -> Allocation:
    """Square-root staffing per stage from the scenario's offered loads (module docstring)."""
    from twin.model.demand import kelurahan_weights

    per_day = scenario.demand.reports_per_day * kelurahan_weights(city, scenario)
    co = scenario.coordination
    open_h = max(co.office_close_h - co.office_open_h, 1.0)
    desks = _sqrt_staffing(per_day / open_h * co.handling.mean_min / 60.0)
    shares = _routed_shares(scenario)
    k = scenario.crews
    shift_h = sum(end - start for start, end in k.shifts) or 24.0
    service = _work_h(scenario, "ppsu") + k.proof_min / 60.0 + TRAVEL_H
    per_shift = _sqrt_staffing(per_day * shares.get("ppsu", 0.0) / shift_h * service)
    crews = per_shift * max(len(k.shifts), 1)
    active = per_day > 0
    desks = np.where(active, np.maximum(desks, 1), 0)
    crews = np.where(active, np.maximum(crews, 1), 0)
    kota = pd.factorize(city.table["kota"].astype(str))[0]
    teams = {}
    for name, a in scenario.agencies.items():
        jobs = np.bincount(kota, weights=per_day * shares.get(name, 0.0))
        hours = max(a.close_h - a.open_h, 1.0)
        load = jobs / hours * (_work_h(scenario, name) + 2 * TRAVEL_H)
        teams[name] = int(max(1, _sqrt_staffing(load).max()))
    return Allocation(desks.astype(np.int64), crews.astype(np.int64), teams)


def minimum(start: Allocation) -> Allocation:
    """The least staffing allowed: one desk officer and one crew where reports come, one team
    per agency and kota."""
    active = (start.desks > 0) | (start.crews > 0)
    one = active.astype(np.int64)
    return Allocation(one, one.copy(), dict.fromkeys(start.teams, 1))


def fit_to_budget(start: Allocation, floor: Allocation, budget: float, p: Prices) -> Allocation:
    """`start`, its staff above the `floor` scaled down (largest remainders) until it fits."""
    spend = p.spend(start)
    if spend <= budget:
        return start
    base = p.spend(floor)
    share = (budget - base) / (spend - base)
    desks = floor.desks + np.floor((start.desks - floor.desks) * share).astype(np.int64)
    crews = floor.crews + np.floor((start.crews - floor.crews) * share).astype(np.int64)
    teams = {n: floor.teams[n] + int((t - floor.teams[n]) * share) for n, t in start.teams.items()}
    return Allocation(desks, crews, teams)


def write_tables(
    a: Allocation, codes: NDArray[np.str_], folder: Path, tag: str
) -> tuple[Path, Path]:
    """The allocation as the staff tables the scenario reads (``kelurahan_code,staff``)."""
    folder.mkdir(parents=True, exist_ok=True)
    desk = folder / f"{tag}-desk.csv"
    crew = folder / f"{tag}-crews.csv"
    pd.DataFrame({"kelurahan_code": codes, "staff": a.desks}).to_csv(desk, index=False)
    pd.DataFrame({"kelurahan_code": codes, "staff": a.crews}).to_csv(crew, index=False)
    return desk, crew


def as_scenario(
    base: Scenario, a: Allocation, codes: NDArray[np.str_], folder: Path, tag: str
) -> Scenario:
    """`base` running allocation `a` (staff tables written under `folder`)."""
    desk, crew = write_tables(a, codes, folder, tag)
    agencies = {
        n: dataclasses.replace(p, teams_per_kota=a.teams[n]) for n, p in base.agencies.items()
    }
    return dataclasses.replace(
        base,
        name=f"{base.name}-{tag}",
        coordination=dataclasses.replace(base.coordination, staff_table=str(desk)),
        crews=dataclasses.replace(base.crews, staff_table=str(crew)),
        agencies=agencies,
    )


@dataclass(slots=True)
class Evaluation:
    """An allocation's replications: per-kelurahan means and the breaches of each replication."""

    allocation: Allocation
    scenario: Scenario
    results: list[ReplicationResult]
    means: pd.DataFrame
    breaches: NDArray[np.float64]  # per replication: kelurahan-target pairs missed

    def missed(self, targets: tuple[str, ...]) -> pd.DataFrame:
        """Per kelurahan and target, whether its mean over the replications misses."""
        return missed(self.means, self.scenario, targets)


def missed(means: pd.DataFrame, scenario: Scenario, targets: tuple[str, ...]) -> pd.DataFrame:
    """Per kelurahan with reports and target: True where the mean misses the target."""
    seen = means[means["reports"] > 0]
    return pd.DataFrame(
        {t: seen[TARGETS[t][0]].fillna(math.inf) > getattr(scenario.targets, TARGETS[t][1])
         for t in targets}
    )  # fmt: skip


def evaluate(
    runner: Runner, scenarios: list[Scenario], allocations: list[Allocation], replications: int,
    targets: tuple[str, ...], first: int = 0,
) -> list[Evaluation]:  # fmt: skip
    """Replications `first`..`first + replications - 1` of every allocation, in one batch (common
    random numbers: replication r of every allocation sees the same reports)."""
    tasks = [Task((i,), s, first + r, runner.data_dir)
             for i, s in enumerate(scenarios) for r in range(replications)]  # fmt: skip
    results = runner.run(tasks)
    out = []
    for i, (s, a) in enumerate(zip(scenarios, allocations, strict=True)):
        rs = [r for r in results if r.key == (i,)]
        means = pd.concat([r.kelurahan for r in rs]).groupby(level=0).mean(numeric_only=True)
        breaches = np.array([float(missed(r.kelurahan, s, targets).to_numpy().sum()) for r in rs])
        out.append(Evaluation(a, s, rs, means, breaches))
    return out
