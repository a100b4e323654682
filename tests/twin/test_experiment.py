"""Replications, paired comparisons and sweeps on a synthetic city; local pool and Dask."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from tests.reports_html import external_sources
from twin.errors import ScenarioError
from twin.experiments import replications as ex
from twin.experiments import statistics as st
from twin.experiments.replications import Runner
from twin.experiments.sweep import load_sweep
from twin.model.scenario import Scenario
from twin.reports.studies import compare, replicate, run_sweep


@pytest.fixture
def runner(synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))  # inherited by pool workers
    return Runner(data_dir=str(synthetic_dir), workers=1)


def small(**crews: object) -> Scenario:
    base = Scenario(name="small")
    return dataclasses.replace(
        base,
        run=dataclasses.replace(base.run, days=4),
        demand=dataclasses.replace(base.demand, reports_per_day=80.0),
        crews=dataclasses.replace(base.crews, **crews),  # type: ignore[arg-type]
    )


def test_mean_ci_matches_the_t_interval() -> None:
    mean, _, hi = st.mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert hi - mean == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, rel=1e-5)  # t(3) = 3.1824
    assert math.isnan(st.mean_ci([1.0])[1])


def test_parallel_equals_sequential(runner: Runner) -> None:
    tasks = [ex.Task(("s",), small(), r, runner.data_dir) for r in range(3)]
    one = ex.run_tasks(tasks, workers=1)
    two = ex.run_tasks(tasks, workers=2)
    assert [r.kpis for r in one] == [r.kpis for r in two]
    assert len({r.kpis["mean_resolution_h"] for r in one}) == 3  # replications differ


def test_dask_local_cluster_equals_sequential(runner: Runner) -> None:
    from distributed import LocalCluster

    tasks = [ex.Task(("s",), small(), r, runner.data_dir) for r in range(2)]
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        on_dask = ex.run_tasks(tasks, dask_address=cluster.scheduler_address)
    assert [r.kpis for r in on_dask] == [r.kpis for r in ex.run_tasks(tasks, workers=1)]


def test_replicate_writes_cis_ranking_and_report(runner: Runner, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    result = replicate(small(), 3, runner, out)
    s = result["summary"]
    assert (s["ci_low"] <= s["mean"]).all()
    assert (s["mean"] <= s["ci_high"]).all()
    assert set(result["verdicts"]) == {
        "coordination_mean_6h",
        "resolution_mean_7d",
        "benchmark_resolution_9h",
    }
    for name in (
        "summary_ci.csv",
        "replications.csv",
        "ranking_robustness.csv",
        "kpis_ci.png",
        "report.html",
    ):
        assert (out / name).is_file()
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page
    assert external_sources(page) == []  # self-contained
    with pytest.raises(ScenarioError, match="replications must be >= 2"):
        replicate(small(), 1, runner, out)


def test_compare_is_paired_on_common_random_numbers(runner: Runner, tmp_path: Path) -> None:
    same = compare([small(), dataclasses.replace(small(), name="copy")], 3, runner, tmp_path / "c1")
    d = same["differences"]["copy"]
    assert (d["difference"] == 0).all()  # same reports, same staffing: identical, CI of width 0
    assert not d["significant"].any()
    assert (d["verdict"] == "equivalent").all()
    starved = dataclasses.replace(small(per_kelurahan=10, complaint_duty_share=0.1), name="starved")
    rich = dataclasses.replace(small(per_kelurahan=50, complaint_duty_share=0.5), name="rich")
    result = compare([starved, rich], 3, runner, tmp_path / "c2")
    diff = result["differences"]["rich"].loc["mean_resolution_h"]
    assert diff["difference"] < 0
    assert bool(diff["significant"])
    assert diff["verdict"] == "better"
    assert "better" in result["conclusion"]
    assert result["best"] == "rich"
    assert result["costs"]["rich"].total_idr > result["costs"]["starved"].total_idr
    assert any("a month more" in line for line in result["executive"])
    assert (tmp_path / "c2" / "report.html").is_file()


def test_sweep_finds_staffing_and_refuses_bad_grids(runner: Runner, tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text(  # PPSU staffing decides: no agency hand-overs, ample desk staff
        "[run]\ndays = 3\n[demand]\nreports_per_day = 80.0\n"
        "[coordination]\nagency_scale = 0.0\nstaff_per_kelurahan = 4\n"
    )
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(
        f'scenario = "{base.name}"\nreplications = 2\ntargets = ["benchmark_resolution_9h"]\n'
        '[grid]\n"crews.per_kelurahan" = [10, 50]\n"crews.complaint_duty_share" = [0.1]\n'
    )
    sweep = load_sweep(sweep_file)
    result = run_sweep(sweep, runner, tmp_path / "out")
    table = result["table"]
    assert len(table) == 2
    assert table["mean_resolution_h"].iloc[1] < table["mean_resolution_h"].iloc[0]
    assert set(result["minimum"].stack().unique()) <= {10.0, 50.0}
    assert table["staff_cost_idr"].iloc[1] > table["staff_cost_idr"].iloc[0]  # more crews
    for name in ("sweep.csv", "minimum_staffing.csv", "staffing_curve.png", "report.html"):
        assert (tmp_path / "out" / name).is_file()

    def refused(grid: str, fragment: str) -> None:
        sweep_file.write_text(f'scenario = "{base.name}"\n[grid]\n{grid}')
        with pytest.raises(ScenarioError, match=fragment):
            load_sweep(sweep_file)

    refused('"crews.colour" = [1, 2]\n', "not a scenario field")
    refused('"crews.per_kelurahan" = []\n', "non-empty list")
    refused("", "grid is empty")
    refused('"crews.per_kelurahan" = [-5]\n', "crews.per_kelurahan must be >= 0")
    refused('"crews.dispatch" = ["closest"]\n', "unknown policy 'closest'")


def test_verdicts_weigh_the_ci_against_the_practical_threshold() -> None:
    # +0.047 h (3 minutes) with a tight CI: significant, but equivalent for a planner
    assert st.verdict(0.04, 0.054, 0.047, 0.5, True) == "equivalent"
    assert st.verdict(-2.0, -1.0, -1.5, 0.5, True) == "better"
    assert st.verdict(1.0, 2.0, 1.5, 0.5, True) == "worse"
    assert st.verdict(0.02, 0.04, 0.03, 0.01, False) == "better"  # a share 3 points up
    assert st.verdict(-0.3, 1.5, 0.6, 0.5, True) == "inconclusive"
    assert st.verdict(0.1, 0.9, 0.2, 0.5, True) == "inconclusive"  # real but below the threshold
    assert st.verdict(5.0, 9.0, 7.0, 1.0, None) == "higher"
    with pytest.raises(ScenarioError, match="--threshold mean_speed: unknown KPI"):
        st.practical_thresholds({"mean_speed": 1.0})
    with pytest.raises(ScenarioError, match="must be a number >= 0"):
        st.practical_thresholds({"mean_resolution_h": -1.0})


def test_numbers_never_show_a_negative_zero() -> None:
    from twin.reports.study_report import number

    assert number(-0.0001) == "0.000"
    assert number(-0.0) == "0.000"
    assert number(-0.0004, 3, sign=True) == "0.000"
    assert number(-0.25, 2, sign=True) == "-0.25"
    assert number(10.0) == "10.000"


def test_rank_robustness_flags_stable_members(runner: Runner) -> None:
    results = ex.run_tasks(
        [ex.Task(("s",), small(), r, runner.data_dir) for r in range(3)], workers=1
    )
    ranking = st.rank_robustness(results, top=2, min_reports=5)
    assert {"kelurahan_name", "rank_mean", "rank_low", "rank_high", "best_share", "stable"} <= set(
        ranking.columns
    )
    n = ranking.attrs["ranked"]
    assert ranking["rank_low"].min() >= 1
    assert ranking["rank_high"].max() <= n
    assert (ranking["rank_low"] <= ranking["rank_mean"]).all()
    assert (ranking["rank_mean"] <= ranking["rank_high"]).all()
    assert (ranking["group"] == "best").sum() == 2
    assert np.all(np.diff(ranking["rank_mean"].to_numpy()) >= 0)
    # a real difference makes members stable: one kelurahan always fastest, one always slowest
    codes = ranking.sort_values("rank_mean", ascending=False).index  # the slowest made fastest
    fixed = []
    for r in results:
        kel = r.kelurahan.copy()
        kel.loc[codes[0], "mean_resolution_h"] = 0.01
        kel.loc[codes[1], "mean_resolution_h"] = 1e6
        fixed.append(dataclasses.replace(r, kelurahan=kel))
    clear = st.rank_robustness(fixed, top=2, min_reports=5)
    assert bool(clear.loc[codes[0], "stable"])
    assert clear.loc[codes[0], "group"] == "best"
    assert bool(clear.loc[codes[1], "stable"])
    assert clear.loc[codes[1], "group"] == "worst"
    few = st.rank_robustness(results, top=2, min_reports=10_000)
    assert few.empty  # nobody has enough reports to be ranked


def test_cli_replications_compare_and_sweep(
    synthetic_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from twin_cli.main import main

    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    a = tmp_path / "a.toml"
    a.write_text("[run]\ndays = 2\n[demand]\nreports_per_day = 60.0\n")
    b = tmp_path / "b.toml"
    b.write_text('base = "a.toml"\n[crews]\ndispatch = "fifo"\n')
    common = ["--data", str(synthetic_dir), "--workers", "1"]
    assert (
        main(
            ["run", str(a), "--replications", "2", "--out", str(tmp_path / "r"), "--quiet", *common]
        )
        == 0
    )
    assert "95 % CI" in capsys.readouterr().out
    assert (
        main(
            [
                "compare",
                str(a),
                str(b),
                "--replications",
                "2",
                "--out",
                str(tmp_path / "c"),
                *common,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Best mean resolution" in out
    assert "verdict" in out
    assert "-0.000" not in out
    bad = ["--threshold", "mean_speed=1", "--replications", "2", *common]
    assert main(["compare", str(a), str(b), *bad]) == 2
    err = capsys.readouterr().err
    assert "--threshold mean_speed: unknown KPI" in err
    assert err.count("\n") == 1
    assert main(["compare", str(a), str(b), "--threshold", "mean_resolution_h=lots", *common]) == 2
    assert "expected KPI=NUMBER" in capsys.readouterr().err
    sweep = tmp_path / "s.toml"
    sweep.write_text(
        'scenario = "a.toml"\nreplications = 2\n[grid]\n"crews.per_kelurahan" = [10, 30]\n'
    )
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "s"), *common]) == 0
    assert (tmp_path / "s" / "report.html").is_file()
    capsys.readouterr()
    sweep.write_text('scenario = "a.toml"\n[grid]\n"crews.nope" = [1]\n')
    assert main(["sweep", str(sweep), *common]) == 2
    err = capsys.readouterr().err
    assert "crews.nope" in err
    assert err.count("\n") == 1
    assert main(["compare", str(a), "--replications", "2", *common]) == 2
    assert "at least two" in capsys.readouterr().err
    sweep.write_text(
        'scenario = "a.toml"\ntargets = ["mean_speed"]\n[grid]\n"crews.per_kelurahan" = [1]\n'
    )
    assert main(["sweep", str(sweep), *common]) == 2
    err = capsys.readouterr().err
    assert "targets: 'mean_speed' is not a target" in err
    assert err.count("\n") == 1
