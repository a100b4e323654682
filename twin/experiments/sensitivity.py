"""Global sensitivity of the KPIs to the assumed parameters: Morris elementary effects (SALib).

Each of R trajectories moves one parameter at a time across a grid of its plausible range
(`twin.experiments.assumptions`); every point runs on the same random numbers (common random
numbers), so an elementary effect is the parameter's, not the dice's. ``mu_star`` (the mean
absolute elementary effect) ranks the parameters by influence, ``sigma`` shows interactions or
non-linearity. Effects are also given per unit of the KPI's spread across all runs, so parameters
can be ranked across KPIs with different units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.errors import ScenarioError
from twin.experiments.replications import Task, check_replications
from twin.experiments.variants import apply_point

if TYPE_CHECKING:
    from twin.experiments.assumptions import Assumption
    from twin.experiments.replications import Runner
    from twin.model.scenario import Scenario

SENSITIVITY_KPIS = (
    "mean_coordination_h",
    "mean_resolution_h",
    "share_coordinated_within_6h",
    "share_resolved_within_7d",
)


def morris(
    base: Scenario,
    assumptions: list[Assumption],
    runner: Runner,
    *,
    trajectories: int = 10,
    levels: int = 4,
    replications: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Morris screening of `assumptions` on `base`.

    Returns
    -------
    result
        ``indices`` (one row per KPI and parameter: ``mu_star``, ``mu_star_conf``, ``sigma``,
        ``mu_star_scaled``, ``rank``), ``ranking`` (parameters by their mean scaled ``mu_star``
        over the KPIs), ``samples`` (every point run, with its KPIs) and ``runs``.
    """
    from SALib.analyze import morris as analyse
    from SALib.sample import morris as sample

    if trajectories < 2:
        raise ScenarioError(f"--trajectories must be >= 2, got {trajectories}")
    if replications > 1:
        check_replications(replications)
    varied = [a for a in assumptions if a.high > a.low]
    if len(varied) < 2:
        raise ScenarioError("sensitivity needs at least two parameters with low < high")
    names = [a.field for a in varied]
    problem = {
        "num_vars": len(varied),
        "names": names,
        "bounds": [[a.low, a.high] for a in varied],
    }
    x = sample.sample(problem, N=trajectories, num_levels=levels, seed=seed)
    scenarios = [
        apply_point(base, {a.field: float(v) for a, v in zip(varied, row, strict=True)})
        for row in x
    ]
    tasks = [
        Task((i,), s, r, runner.data_dir)
        for i, s in enumerate(scenarios)
        for r in range(replications)  # replication r: the same reports at every point (CRN)
    ]
    results = runner.run(tasks)
    ordered = sorted(results, key=lambda r: (r.key, r.replication))
    y = pd.DataFrame([r.kpis for r in ordered]).assign(point=[r.key[0] for r in ordered])
    y = y.groupby("point")[list(SENSITIVITY_KPIS)].mean().sort_index()
    rows = []
    for kpi in SENSITIVITY_KPIS:
        values = y[kpi].to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise ScenarioError(f"{kpi}: some runs gave no value; widen the run (more days)")
        si = analyse.analyze(problem, x, values, num_levels=levels, seed=seed)
        spread = float(values.std()) or 1.0
        for i, name in enumerate(names):
            rows.append({
                "kpi": kpi, "parameter": name, "mu_star": float(si["mu_star"][i]),
                "mu_star_conf": float(si["mu_star_conf"][i]), "sigma": float(si["sigma"][i]),
                "mu_star_scaled": float(si["mu_star"][i]) / spread,
            })  # fmt: skip
    indices = pd.DataFrame(rows)
    indices["rank"] = (
        indices.groupby("kpi")["mu_star"].rank(ascending=False, method="min").astype(int)
    )
    ranking = (
        indices.groupby("parameter")["mu_star_scaled"]
        .mean()
        .sort_values(ascending=False)
        .rename("mean_scaled_mu_star")
        .to_frame()
    )
    ranking["rank"] = np.arange(1, len(ranking) + 1)
    samples = pd.DataFrame(x, columns=names).join(y.reset_index(drop=True))
    return {"indices": indices, "ranking": ranking, "samples": samples, "runs": len(tasks)}
