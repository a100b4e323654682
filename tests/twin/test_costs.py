"""Staff costs: scenario fields checked with one line, headcount from the model's staffing rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from twin.errors import ScenarioError
from twin.model.costs import UMP_DKI
from twin.model.payroll import staff_cost
from twin.model.scenario import Scenario, load_scenario, scenario_from_dict
from twin_cli.main import main


@pytest.mark.parametrize(
    ("costs", "message"),
    [
        ('unit = "USD per month"', "costs.unit: 'USD per month' is not supported"),
        ('ppsu_crew = "5 juta"', "costs.ppsu_crew: expected a number, got '5 juta'"),
        ("desk_officer = -1", "costs.desk_officer must be a non-negative number"),
        ("agency_team = true", "costs.agency_team: expected a number"),
        ("crew = 1", "costs.crew: unknown field"),
    ],
)
def test_a_bad_cost_field_is_one_line_and_exit_2(
    costs: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f"[costs]\n{costs}\n")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_period_scenarios_pay_ppsu_their_years_minimum_wage() -> None:
    root = Path(__file__).resolve().parents[2] / "scenarios"
    for year, wage in UMP_DKI.items():
        costs = load_scenario(root / f"jakarta-{year}-calibrated.toml").costs
        assert costs.ppsu_crew == wage
        assert costs.desk_officer == 2 * wage
        assert costs.agency_team == 5 * wage


def test_staff_cost_counts_the_staff_the_model_runs_with(synthetic_city: Any) -> None:
    s = scenario_from_dict(
        {"coordination": {"staff_per_kelurahan": 3}, "crews": {"per_kelurahan": 40},
         "costs": {"desk_officer": 10.0, "agency_team": 100.0, "ppsu_crew": 1.0}}
    )  # fmt: skip
    cost = staff_cost(synthetic_city, s)
    n = synthetic_city.n_kelurahan
    kota = synthetic_city.table["kota"].nunique()
    assert cost.desk_officers == 3 * n
    assert cost.ppsu_crews == n * s.crews.crews_per_kelurahan
    assert cost.agency_teams == kota * sum(a.teams_per_kota for a in s.agencies.values())
    assert cost.total_idr == 10.0 * 3 * n + 100.0 * cost.agency_teams + cost.ppsu_crews
    more = dataclasses.replace(s, crews=dataclasses.replace(s.crews, per_kelurahan=80))
    assert staff_cost(synthetic_city, more).ppsu_idr > cost.ppsu_idr
    assert isinstance(Scenario().costs.source, str)


def test_bad_costs_are_refused_in_code_too() -> None:
    with pytest.raises(ScenarioError, match=r"costs\.ppsu_crew"):
        scenario_from_dict({"costs": {"ppsu_crew": float("nan")}})
