"""Periods as files, calibration as inference (ABC-SMC, pyabc) and validation with predictive
intervals, on a synthetic city (fast, and with a known truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.errors import ScenarioError
from twin.experiments.assumptions import load_assumptions
from twin.experiments.inference import (
    Calibration,
    ToleranceDistance,
    calibrate_abc,
    calibration_ranges,
    marginals,
    trade_offs,
    weighted_quantiles,
)
from twin.experiments.periods import load_period, load_periods
from twin.experiments.replications import Runner, Task, run_task
from twin.experiments.validation import PERIOD_DIR, behaviour, validate
from twin.experiments.variants import apply_point
from twin_cli.main import main

SCENARIO = """
[run]
days = 3
seed = 5
follow_up_days = 7
[demand]
reports_per_day = 60.0
[crews]
per_kelurahan = 20
"""
RANGES = """
["coordination.unanswered_share"]
low = 0.0
high = 0.5
["crews.proof_min"]
low = 1.0
high = 20.0
"""
PERIOD = """
start = 2020-03-01
end = 2020-03-03
scenario = "scenario/s.toml"
fit = {fit}
calibrate = ["coordination.unanswered_share", "crews.proof_min"]

[[published]]
kpi = "reports_per_day"
value = 60.0
tolerance = 0.1
relative = true
role = "volume"

[[published]]
kpi = "resolved_share"
value = {resolved}
tolerance = 0.05
"""


def _write(folder: Path, name: str, resolved: float, *, fit: bool = True) -> Path:
    (folder / "scenario").mkdir(parents=True, exist_ok=True)  # beside the period files
    (folder / "scenario" / "s.toml").write_text(SCENARIO)
    path = folder / f"{name}.toml"
    path.write_text(PERIOD.format(fit=str(fit).lower(), resolved=resolved))
    return path


def _truth(synthetic_dir: Path, folder: Path, share: float) -> float:
    """The resolved share the twin gives at unanswered_share = `share` (replication 0)."""
    base = load_period(_write(folder, "probe", 0.5)).base_scenario()
    scenario = apply_point(base, {"coordination.unanswered_share": share})
    return run_task(Task((), scenario, 0, str(synthetic_dir))).kpis["resolved_share"]


def test_abc_pins_down_the_parameter_the_figures_inform_and_not_the_other(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    published = _truth(synthetic_dir, tmp_path / "p", 0.3)
    period = load_period(_write(tmp_path / "p", "synthetic", round(published, 4)))
    (tmp_path / "r.toml").write_text(RANGES)
    ranges = calibration_ranges(
        period, load_assumptions(tmp_path / "r.toml", period.base_scenario())
    )
    fit = calibrate_abc(period, ranges, tmp_path / "abc.db", population=20, max_simulations=200,
                        generations=6, workers=1, data_dir=str(synthetic_dir), seed=1)  # fmt: skip
    assert fit.epsilon <= 1.0  # reached the published tolerance
    assert len(fit.consistent) == len(fit.population)
    assert 1.0 <= fit.effective_size <= len(fit.population)
    table = marginals(fit, ranges).set_index("parameter")
    share = table.loc["coordination.unanswered_share"]
    # the resolved share pins the never-picked-up share near its truth...
    assert share["q2.5"] <= 0.3 <= share["q97.5"]
    assert share["identified"]
    assert share["share_of_range"] < 0.35
    # ...and says nothing about proof time (the whole plausible range stays)
    assert not table.loc["crews.proof_min", "identified"]
    # the chosen values are an accepted draw
    chosen = fit.chosen()
    assert abs(chosen["coordination.unanswered_share"] - 0.3) < 0.1


def test_trade_offs_and_quantiles_from_a_known_sample() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, 400)
    pop = pd.DataFrame({"x": a, "y": 1 - a + rng.normal(0, 0.02, 400), "z": rng.uniform(0, 1, 400),
                        "weight": 1 / 400, "distance": 0.5})  # fmt: skip
    fit = Calibration("p", ["x", "y", "z"], pop, pd.DataFrame({"epsilon": [1.0]}), 400, 1.0)
    assert fit.effective_size == pytest.approx(400)  # equal weights: every draw counts
    pairs = trade_offs(fit).set_index(["parameter_a", "parameter_b"])
    assert pairs.loc[("x", "y"), "correlation"] < -0.95
    assert pairs.loc[("x", "y"), "trade_off"]
    assert not pairs.loc[("x", "z"), "trade_off"]
    lo, med, hi = weighted_quantiles(np.arange(101.0), np.ones(101))
    assert (lo, med, hi) == (2.0, 50.0, 98.0)  # the inverse of the empirical cdf
    # weights move the quantiles
    assert weighted_quantiles(np.array([0.0, 1.0]), np.array([0.9, 0.1]), (0.5,)) == (0.0,)


def test_distance_is_the_worst_target_in_tolerance_units() -> None:
    d = ToleranceDistance((("a", 0.1), ("b", 2.0)))
    assert d({"a": 1.05, "b": 10.0}, {"a": 1.0, "b": 11.0}) == pytest.approx(0.5)
    assert d({"a": 1.3, "b": 10.0}, {"a": 1.0, "b": 10.0}) == pytest.approx(3.0)
    assert d({"a": float("nan"), "b": 10.0}, {"a": 1.0, "b": 10.0}) == float("inf")


def test_validation_predicts_a_never_fitted_period_from_the_fitted_posterior(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "periods"
    published = _truth(synthetic_dir, tmp_path / "probe", 0.3)
    # one fitted period whose accepted sample sits at the truth, one never fitted whose published
    # outcome is the truth's, and one never fitted that the truth cannot produce
    fitted = _write(folder, "a-fitted", round(published, 4))
    pd.DataFrame({"coordination.unanswered_share": [0.29, 0.3, 0.31], "crews.proof_min": 5.0,
                  "weight": 1.0}).to_csv(folder / "a.csv", index=False)  # fmt: skip
    fitted.write_text(fitted.read_text().replace("fit = true", 'fit = true\nposterior = "a.csv"'))
    _write(folder, "b-predicted", round(published, 4), fit=False)
    _write(folder, "c-missed", 0.99, fit=False)
    periods = load_periods(folder)
    table = validate(periods, list(periods), 6, Runner(data_dir=str(synthetic_dir), workers=1))
    rows = table.set_index(["period", "kpi"])
    assert rows.loc[("a-fitted", "resolved_share"), "role"] == "fitted"
    assert rows.loc[("a-fitted", "resolved_share"), "pass"]
    assert list(table[table["period"] == "a-fitted"]["check"].unique()) == ["in-sample"]
    hit = rows.loc[("b-predicted", "resolved_share")]
    assert (hit["role"], hit["check"]) == ("predicted", "never-fitted")
    assert hit["pi_low"] < hit["pi_high"]  # parameters and dice vary
    assert hit["in_interval"]
    miss = rows.loc[("c-missed", "resolved_share")]
    assert not miss["in_interval"]
    assert not miss["pass"]


def test_a_prediction_takes_each_other_period_s_behaviour_whole(tmp_path: Path) -> None:
    folder = tmp_path / "periods"
    a = _write(folder, "a", 0.8)
    _write(folder, "b", 0.8)
    a.write_text(a.read_text().replace('"crews.proof_min"]', "]"))  # a fits one field only
    periods = load_periods(folder)
    posteriors = {
        "a": pd.DataFrame({"coordination.unanswered_share": [0.1, 0.2], "weight": [1.0, 3.0]}),
        "b": pd.DataFrame({"coordination.unanswered_share": [0.4], "crews.proof_min": [9.0],
                           "weight": [5.0]}),
    }  # fmt: skip
    pooled = behaviour(periods, ["a", "b"], posteriors)
    # each period weighs 1 in all; a's draws take a's scenario value of the field it does not fit
    assert pooled["weight"].tolist() == [0.25, 0.75, 1.0]
    scenario_proof = periods["a"].base_scenario(1).crews.proof_min
    assert pooled["crews.proof_min"].tolist() == [scenario_proof, scenario_proof, 9.0]
    checks = {(n, c): d for n, c, d in plan_checks(periods, posteriors)}
    assert set(checks) == {("a", "in-sample"), ("a", "leave-one-out"), ("b", "in-sample"),
                           ("b", "leave-one-out")}  # fmt: skip
    assert {d["coordination.unanswered_share"] for d in checks[("a", "leave-one-out")]} == {0.4}


def plan_checks(periods: dict, posteriors: dict) -> list:  # type: ignore[type-arg]
    import twin.experiments.validation as v

    original = v.load_posterior
    v.load_posterior = lambda p: posteriors.get(p.name)  # type: ignore[assignment]
    try:
        return v.plan(periods, list(periods), 8, 0)
    finally:
        v.load_posterior = original


def test_a_period_s_own_range_replaces_the_assumptions_file_s(tmp_path: Path) -> None:
    path = _write(tmp_path, "p", 0.8)
    text = path.read_text().replace(
        "\n[[published]]", '\n[ranges."crews.proof_min"]\nlow = 3.0\nhigh = 4.0\n\n[[published]]', 1
    )
    path.write_text(text)
    period = load_period(path)
    (tmp_path / "r.toml").write_text(RANGES)
    assumptions = load_assumptions(tmp_path / "r.toml", period.base_scenario())
    ranges = calibration_ranges(period, assumptions)
    assert [(a.field, a.low, a.high) for a in ranges] == [
        ("coordination.unanswered_share", 0.0, 0.5), ("crews.proof_min", 3.0, 4.0)]  # fmt: skip
    path.write_text(text.replace("low = 3.0", "low = 5.0"))
    with pytest.raises(ScenarioError, match=r"ranges: crews\.proof_min: low 5 > high 4"):
        calibration_ranges(load_period(path), assumptions)
    path.write_text(text.replace("high = 4.0", "high = -4.0").replace("low = 3.0", "low = -5.0"))
    with pytest.raises(ScenarioError, match="outside what the scenario accepts"):
        calibration_ranges(load_period(path), assumptions)
    path.write_text(
        text.replace('[ranges."crews.proof_min"]', '[ranges."crews.rework_probability"]')
    )
    with pytest.raises(
        ScenarioError, match=r"ranges: crews\.rework_probability is not in calibrate"
    ):
        load_period(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('role = "volume"\n', 'role = "target"\n'), "needs exactly one volume"),
        (("start = 2020-03-01", 'start = "2020-13-01"'), "start: '2020-13-01' is not a date"),
        (("start = 2020-03-01\n", ""), "start is missing"),
        (("end = 2020-03-03", "end = 2020-02-01"), "end 2020-02-01 is before start"),
        (('kpi = "resolved_share"', 'kpi = "happiness"'), "kpi 'happiness' is not a KPI"),
        (("tolerance = 0.05", "tolerance = -1"), "tolerance must be a number > 0"),
        (
            ('scenario = "scenario/s.toml"', 'scenario = "none.toml"'),
            "scenario: .*none.toml not found",
        ),
        (("fit = true", "fit = true\nwhen = 1"), "when: unknown key"),
    ],
)
def test_a_bad_period_file_is_refused_with_one_line(
    edit: tuple[str, str], message: str, tmp_path: Path
) -> None:
    path = _write(tmp_path, "p", 0.8)
    path.write_text(path.read_text().replace(*edit))
    with pytest.raises(ScenarioError, match=message):
        load_period(path)


def test_bad_input_exits_2_before_any_run(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "periods"
    path = _write(folder, "p", 0.8)
    path.write_text(path.read_text().replace('role = "volume"\n', ""))  # no volume
    assert main(["validate", "--periods", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "needs exactly one volume" in err
    assert len(err.strip().splitlines()) == 1
    path = _write(folder, "p", 0.8)
    (tmp_path / "r.toml").write_text('["crews.proof_min"]\nlow = 5.0\nhigh = 1.0\n')
    assert main(["calibrate", str(path), "--assumptions", str(tmp_path / "r.toml")]) == 2
    assert "low 5 > high 1" in capsys.readouterr().err
    (tmp_path / "r.toml").write_text('["crews.proof_min"]\nlow = 1.0\nhigh = 5.0\n')
    assert main(["calibrate", str(path), "--assumptions", str(tmp_path / "r.toml")]) == 2
    assert "coordination.unanswered_share has no plausible range" in capsys.readouterr().err
    (tmp_path / "r.toml").write_text(RANGES.replace("high = 0.5", "high = 1.5"))
    assert main(["calibrate", str(path), "--assumptions", str(tmp_path / "r.toml")]) == 2
    assert "outside what the scenario accepts" in capsys.readouterr().err


def test_the_shipped_periods_load() -> None:
    periods = load_periods(PERIOD_DIR)
    assert {"jakarta-2016", "jakarta-2019", "jakarta-2020", "jakarta-2024"} <= set(periods)
    assert not periods["jakarta-2019"].fit
    assert periods["jakarta-2019"].days == 273
    assert all(p.fit for n, p in periods.items() if n != "jakarta-2019")
    for period in periods.values():
        assert period.volume.kpi == "reports_per_day"
        assert period.base_scenario(3).demand.reports_per_day == period.volume.published


@pytest.mark.parametrize("where", ["pool", "dask"])
def test_calibration_runs_on_the_process_pool_and_on_dask(
    where: str, synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import LocalCluster

    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))  # inherited by the workers
    period = load_period(_write(tmp_path / "p", "synthetic", 0.7))
    (tmp_path / "r.toml").write_text(RANGES)
    ranges = calibration_ranges(
        period, load_assumptions(tmp_path / "r.toml", period.base_scenario())
    )
    kwargs = {"population": 4, "max_simulations": 8, "generations": 2,
              "data_dir": str(synthetic_dir)}  # fmt: skip
    if where == "pool":
        fit = calibrate_abc(period, ranges, tmp_path / "abc.db", workers=2, **kwargs)  # type: ignore[arg-type]
    else:
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:  # fmt: skip
            fit = calibrate_abc(period, ranges, tmp_path / "abc.db",
                                dask_address=cluster.scheduler_address, **kwargs)  # type: ignore[arg-type]  # fmt: skip
    assert len(fit.population) == 4
    assert fit.simulations >= 8
    # every accepted draw's simulated figure is what the twin gives at its parameters (CRN:
    # replication 0 of the scenario's seed, wherever it ran)
    row = fit.population.iloc[0]
    again = run_task(Task((), apply_point(period.base_scenario(), {f: float(row[f]) for f in fit.fields}),
                          0, str(synthetic_dir)))  # fmt: skip
    assert again.kpis["resolved_share"] == pytest.approx(row["resolved_share"])
