"""Global sensitivity (Morris, SALib) of the KPIs to the assumed parameters, on a synthetic city."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from twin.errors import ScenarioError
from twin.experiments.assumptions import load_assumptions
from twin.experiments.replications import Runner
from twin.experiments.sensitivity import morris
from twin.model.scenario import scenario_from_dict
from twin_cli.main import main

SCENARIO = """
[run]
days = 3
seed = 9
[demand]
reports_per_day = 300.0
[crews]
per_kelurahan = 20
"""
RANGES = """
["coordination.handling.mean_min"]
low = 20.0
high = 240.0
unit = "minutes"
["crews.proof_min"]
low = 1.0
high = 20.0
["demand.access_mean_m"]
low = 10.0
high = 80.0
"""


def test_morris_ranks_the_parameter_that_drives_each_kpi(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    base = scenario_from_dict({"run": {"days": 3, "seed": 9},
                               "demand": {"reports_per_day": 300.0}}, name="s")  # fmt: skip
    (tmp_path / "ranges.toml").write_text(RANGES)
    assumptions = load_assumptions(tmp_path / "ranges.toml", base)
    result = morris(base, assumptions, Runner(data_dir=str(synthetic_dir), workers=1),
                    trajectories=4)  # fmt: skip
    assert result["runs"] == 4 * (3 + 1)
    idx = result["indices"].set_index(["kpi", "parameter"])
    # handling is the only one of the three on the coordination path: rank 1 there, and, with
    # common random numbers, the others have no effect at all on coordination
    assert idx.loc[("mean_coordination_h", "coordination.handling.mean_min"), "rank"] == 1
    assert idx.loc[("mean_coordination_h", "coordination.handling.mean_min"), "mu_star"] > 0.5
    assert idx.loc[("mean_coordination_h", "crews.proof_min"), "mu_star"] == 0.0
    assert idx.loc[("mean_coordination_h", "demand.access_mean_m"), "mu_star"] == 0.0
    # proof time lies on every PPSU report's path: it moves resolution
    assert idx.loc[("mean_resolution_h", "crews.proof_min"), "mu_star"] > 0.0
    assert set(result["ranking"].index) == {a.field for a in assumptions}
    assert list(result["ranking"]["rank"]) == [1, 2, 3]


def test_sensitivity_command_writes_its_report(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "s.toml").write_text(SCENARIO)
    (tmp_path / "ranges.toml").write_text(RANGES)
    out = tmp_path / "sens"
    code = main(["sensitivity", str(tmp_path / "s.toml"), "--assumptions",
                 str(tmp_path / "ranges.toml"), "--trajectories", "2", "--workers", "1",
                 "--data", str(synthetic_dir), "--out", str(out)])  # fmt: skip
    assert code == 0
    for name in ("morris_indices.csv", "ranking.csv", "samples.csv", "sensitivity.png",
                 "report.html", "provenance.json"):  # fmt: skip
        assert (out / name).is_file()
    assert len(pd.read_csv(out / "samples.csv")) == 2 * 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('["crews.proof_min"]\nlow = 5.0\nhigh = 1.0\n', "low 5 > high 1"),
        ('["crews.nothing"]\nlow = 1.0\nhigh = 2.0\n', "crews.nothing: not a scenario field"),
        ('["demand.invalid_share"]\nlow = 0.1\nhigh = 1.5\n', "1.5 is outside what the scenario"),
        ('["crews.proof_min"]\nlow = "a"\nhigh = 2.0\n', "must be numbers"),
        ('["crews.proof_min"]\nhigh = 2.0\n', "low is missing"),
        ('["crews.proof_min"]\nlow = 1.0\nhigh = 2.0\nmax = 3\n', "max: unknown key"),
    ],
)
def test_a_bad_range_is_refused_before_any_run(text: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_assumptions(tmp_path / "r.toml", scenario_from_dict({}, name="s"))


def test_the_shipped_assumptions_load(tmp_path: Path) -> None:
    from twin.city.datadir import SCENARIO_DIR
    from twin.model.scenario import load_scenario

    base = load_scenario(SCENARIO_DIR / "jakarta-2016-calibrated.toml")
    assumptions = load_assumptions(SCENARIO_DIR / "assumptions.toml", base)
    assert len(assumptions) >= 10
    assert all(a.low < a.high for a in assumptions)


def test_bad_range_file_exits_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "s.toml").write_text(SCENARIO)
    (tmp_path / "r.toml").write_text('["crews.proof_min"]\nlow = 5.0\nhigh = 1.0\n')
    code = main(
        ["sensitivity", str(tmp_path / "s.toml"), "--assumptions", str(tmp_path / "r.toml")]
    )
    assert code == 2
    assert "low 5 > high 1" in capsys.readouterr().err
