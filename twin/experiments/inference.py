"""Calibration as inference: which values of the assumed parameters are consistent with a period's
published figures (approximate Bayesian computation, ABC-SMC with pyabc).

Published figures pin down few parameters: a fit that returns one point hides the ridge along which
other points fit as well. ABC-SMC (Toni et al. 2009; pyabc, Schälte et al. 2022) draws the
parameters from their plausible ranges (uniform priors from the assumptions file), runs the twin,
and keeps the draws whose simulated figures are close to the published ones, over generations of
shrinking tolerance. The distance is the largest of the targets' errors in units of their published
tolerance, so at distance <= 1 every target is within tolerance: the final population with
distance <= 1 *is* the set of parameter values consistent with the published figures.

Every draw runs the same replications of the same scenario seed (common random numbers): two draws
differ by their parameters, not by their dice. Runs spread over a local process pool or a Dask
cluster. With one worker a calibration is reproducible from its seed; pyabc reseeds parallel
workers from the operating system, so a parallel calibration is another draw from the same
posterior.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.errors import ScenarioError
from twin.experiments.replications import Task, run_task
from twin.experiments.variants import apply_point

if TYPE_CHECKING:
    from pathlib import Path

    from twin.experiments.assumptions import Assumption
    from twin.experiments.periods import Period, Target
    from twin.model.scenario import Scenario

CORRELATION_TRADE_OFF = 0.5  # |r| of accepted draws above which two parameters trade off
IDENTIFIED_WIDTH = 0.5  # a 95 % posterior range below half the plausible range: pinned down


@dataclass(frozen=True, slots=True)
class Simulator:
    """The twin as pyabc's model: parameters in, the period's published KPIs out (picklable).

    Attributes
    ----------
    base
        The period's scenario.
    fields
        Dotted scenario field of each pyabc parameter ``p0, p1, ...``.
    kpis
        The KPIs returned (the period's published ones).
    replications
        Replications averaged per draw: 0..R-1, the same for every draw (CRN).
    data_dir
        The Jakarta data directory.
    """

    base: Scenario
    fields: tuple[str, ...]
    kpis: tuple[str, ...]
    replications: int
    data_dir: str | None

    def __call__(self, parameters: dict[str, float]) -> dict[str, float]:
        """Run the twin at `parameters` and return the mean of each KPI over the replications."""
        point = {f: float(parameters[f"p{i}"]) for i, f in enumerate(self.fields)}
        scenario = apply_point(self.base, point)
        runs = [run_task(Task((), scenario, r, self.data_dir)) for r in range(self.replications)]
        return {k: float(np.mean([run.kpis[k] for run in runs])) for k in self.kpis}


@dataclass(frozen=True, slots=True)
class ToleranceDistance:
    """The largest error over the targets, each in units of its published tolerance."""

    allowed: tuple[tuple[str, float], ...]

    def __call__(self, x: dict[str, float], x0: dict[str, float]) -> float:
        errors = [abs(x[k] - x0[k]) / a for k, a in self.allowed]
        return max(e if math.isfinite(e) else math.inf for e in errors)


@dataclass(slots=True)
class Calibration:
    """What a calibration found.

    Attributes
    ----------
    period
        The period's name.
    fields
        The parameters fitted.
    population
        The final ABC population: one row per accepted draw (parameter values, ``weight``,
        ``distance``, the simulated KPIs).
    generations
        Per generation: ``t``, ``epsilon``, ``simulations``.
    simulations
        Runs of the twin over all generations.
    seconds
        Wall time.
    """

    period: str
    fields: list[str]
    population: pd.DataFrame
    generations: pd.DataFrame
    simulations: int
    seconds: float

    @property
    def consistent(self) -> pd.DataFrame:
        """The accepted draws within tolerance of every published target (distance <= 1)."""
        return self.population[self.population["distance"] <= 1.0]

    @property
    def effective_size(self) -> float:
        """Kish's effective sample size of the weighted accepted draws (1 / sum of w squared):
        how many equally weighted draws they are worth."""
        w = self.population["weight"].to_numpy(dtype=float)
        w = w / w.sum()
        return float(1.0 / (w**2).sum())

    @property
    def epsilon(self) -> float:
        """The final generation's tolerance (in units of the published tolerances)."""
        return float(self.generations["epsilon"].iloc[-1])

    def chosen(self) -> dict[str, float]:
        """The accepted draw with the smallest distance: the values written to the scenario."""
        best = self.population.sort_values("distance").iloc[0]
        return {f: float(best[f]) for f in self.fields}


def committed_calibration(period: Period) -> Calibration:
    """The accepted draws a period file points to (``posterior``), as a `Calibration` (without
    its generations): what `marginals` and `trade_offs` read."""
    if period.posterior is None:
        raise ScenarioError(f"{period.path}: names no posterior (run twin calibrate {period.name})")
    table = pd.read_csv(period.posterior)
    return Calibration(period.name, list(period.calibrate), table,
                       pd.DataFrame({"t": [], "epsilon": [], "simulations": []}), 0, 0.0)  # fmt: skip


def calibration_ranges(period: Period, assumptions: list[Assumption]) -> list[Assumption]:
    """The ranges of the parameters `period` fits: the period file's own (``[ranges]``, checked
    against its scenario) or else the assumptions file's; one clear error for a parameter
    neither gives."""
    from twin.experiments.assumptions import parse_assumption

    by_field = {a.field: a for a in assumptions}
    base = period.base_scenario(period.calibration_days)
    out = []
    for field in period.calibrate:
        if field in period.ranges:
            where = f"{period.path}: ranges: {field}"
            out.append(parse_assumption(field, period.ranges[field], base, where))
        elif field in by_field:
            out.append(by_field[field])
        else:
            raise ScenarioError(
                f"{period.path}: calibrate: {field} has no plausible range in the assumptions file"
            )
    return out


def calibrate_abc(
    period: Period,
    ranges: list[Assumption],
    db: Path,
    *,
    population: int = 30,
    max_simulations: int = 300,
    generations: int = 8,
    replications: int = 1,
    days: int | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
    data_dir: str | None = None,
    seed: int = 0,
) -> Calibration:
    """ABC-SMC of `period`'s parameters over `ranges` (uniform priors) against its targets.

    Generation 0 draws `population` parameter sets from the priors; each next generation keeps
    draws within the median distance of the last (never below 1). Stops at the generation whose
    tolerance reaches the published one (distance 1), or after
    `generations` generations or about `max_simulations` runs, whichever comes first.
    """
    import logging
    import os

    import pyabc

    if population < 2 or max_simulations < population:
        raise ScenarioError("--population must be >= 2 and --max-simulations >= --population")
    if replications < 1:
        raise ScenarioError(f"--replications must be >= 1, got {replications}")
    targets: tuple[Target, ...] = period.targets
    if not targets:
        raise ScenarioError(f"{period.path}: no target to fit (only a volume)")
    base = period.base_scenario(days or period.calibration_days)
    fields = tuple(a.field for a in ranges)
    prior = pyabc.Distribution(**{
        f"p{i}": pyabc.RV("uniform", a.low, a.high - a.low) for i, a in enumerate(ranges)
    })  # fmt: skip
    simulator = Simulator(base, fields, tuple(t.kpi for t in targets), replications, data_dir)
    distance = ToleranceDistance(tuple((t.kpi, t.allowed) for t in targets))
    logging.getLogger("ABC").setLevel(logging.WARNING)
    np.random.seed(seed)  # pyabc draws from numpy's global generator  # noqa: NPY002
    started = time.perf_counter()
    executor: Any
    if dask_address is not None:
        from distributed import Client  # type: ignore[attr-defined]

        executor = Client(dask_address)  # type: ignore[no-untyped-call]
        sampler = pyabc.sampler.DaskDistributedSampler(dask_client=executor)
    elif (workers or os.cpu_count() or 1) == 1:
        executor = None
        sampler = pyabc.sampler.SingleCoreSampler()
    else:
        from concurrent.futures import ProcessPoolExecutor

        n = workers or os.cpu_count() or 1
        executor = ProcessPoolExecutor(max_workers=n)
        sampler = pyabc.sampler.ConcurrentFutureSampler(executor, client_max_jobs=n)
    try:
        abc = pyabc.ABCSMC(simulator, prior, distance, population_size=population,
                           sampler=sampler, eps=_tolerance_epsilon())  # fmt: skip
        abc.new(f"sqlite:///{db}", {t.kpi: t.published for t in targets})
        history = abc.run(
            minimum_epsilon=1.0,
            max_nr_populations=generations,
            max_total_nr_simulations=max_simulations,
        )
    finally:
        if executor is not None:
            executor.shutdown() if dask_address is None else executor.close()
    seconds = time.perf_counter() - started
    frame = history.get_population_extended(m=0, t=history.max_t, tidy=True)
    table = pd.DataFrame({f: frame[f"par_p{i}"].to_numpy() for i, f in enumerate(fields)})
    table["weight"] = frame["w"].to_numpy() / frame["w"].sum()
    table["distance"] = frame["distance"].to_numpy()
    for t in targets:
        table[t.kpi] = frame[f"sumstat_{t.kpi}"].to_numpy()
    pops = history.get_all_populations()
    pops = pops[pops["t"] >= 0]
    gens = pd.DataFrame({
        "t": pops["t"].astype(int), "epsilon": pops["epsilon"].astype(float),
        "simulations": pops["samples"].astype(int),
    })  # fmt: skip
    return Calibration(
        period=period.name, fields=list(fields), population=table.sort_values("distance"),
        generations=gens.reset_index(drop=True), simulations=int(history.total_nr_simulations),
        seconds=seconds,
    )  # fmt: skip


def _tolerance_epsilon() -> Any:
    """pyabc's median epsilon, starting from the whole prior (generation 0 accepts every draw:
    no calibration sample), and never below 1: the last generation accepts exactly the draws
    within every published tolerance, not a narrower set."""
    import pyabc

    class ToleranceEpsilon(pyabc.QuantileEpsilon):  # type: ignore[misc]
        def _update(self, t: int, weighted_distances: pd.DataFrame) -> None:
            super()._update(t, weighted_distances)
            self._look_up[t] = max(self._look_up[t], 1.0)

    return ToleranceEpsilon(initial_epsilon=1e12, alpha=0.5)  # any finite distance


def marginals(calibration: Calibration, ranges: list[Assumption]) -> pd.DataFrame:
    """Each parameter's weighted 2.5, 50 and 97.5 % quantiles in the accepted population, the
    share of its plausible range they span, and whether the published figures pin it down."""
    pop = calibration.population
    rows = []
    for a in ranges:
        lo, med, hi = weighted_quantiles(pop[a.field].to_numpy(), pop["weight"].to_numpy())
        width = (hi - lo) / (a.high - a.low) if a.high > a.low else 0.0
        rows.append({
            "parameter": a.field, "plausible_low": a.low, "plausible_high": a.high,
            "q2.5": lo, "median": med, "q97.5": hi, "share_of_range": width,
            "identified": width < IDENTIFIED_WIDTH,
        })  # fmt: skip
    return pd.DataFrame(rows)


def trade_offs(calibration: Calibration) -> pd.DataFrame:
    """The weighted correlation of every pair of parameters among the accepted draws; pairs with
    |r| above `CORRELATION_TRADE_OFF` trade off (a ridge: one compensates the other)."""
    pop = calibration.population
    fields = calibration.fields
    x = pop[fields].to_numpy(dtype=float)
    w = pop["weight"].to_numpy(dtype=float)
    corr = np.atleast_2d(np.cov(x, rowvar=False, aweights=w))
    sd = np.sqrt(np.diag(corr))
    rows = []
    for i in range(len(fields)):
        for j in range(i + 1, len(fields)):
            r = corr[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else math.nan
            rows.append({
                "parameter_a": fields[i], "parameter_b": fields[j], "correlation": r,
                "trade_off": bool(abs(r) > CORRELATION_TRADE_OFF),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["parameter_a", "parameter_b", "correlation", "trade_off"])


def weighted_quantiles(
    values: np.ndarray[Any, Any],
    weights: np.ndarray[Any, Any],
    qs: tuple[float, ...] = (0.025, 0.5, 0.975),
) -> tuple[float, ...]:
    """Quantiles of a weighted sample (the inverse of its weighted empirical distribution)."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) / w.sum()
    return tuple(float(v[min(int(np.searchsorted(cdf, q)), len(v) - 1)]) for q in qs)


def resample(posterior: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`n` draws from a weighted accepted sample (with replacement, by weight): a sample of the
    parameters to propagate into predictions."""
    rng = np.random.default_rng(seed)
    w = posterior["weight"].to_numpy(dtype=float)
    idx = rng.choice(len(posterior), size=n, replace=True, p=w / w.sum())
    return posterior.iloc[idx].reset_index(drop=True)
