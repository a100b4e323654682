"""`twin allocate`: budgets and targets checked first, a better allocation than today's found."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.errors import ScenarioError
from twin.experiments.allocation import Budget, check_targets, parse_budget
from twin_cli.main import main

SCENARIO = """
[run]
days = 3
seed = 4
[demand]
reports_per_day = 100.0
[coordination]
staff_per_kelurahan = 1
[crews]
per_kelurahan = 10
"""


@pytest.mark.parametrize(
    ("text", "budget"),
    [("2600", Budget(2600, idr=False)), ("10.5bn IDR", Budget(10.5e9, idr=True)),
     ("450M IDR", Budget(450e6, idr=True)), ("10,500,000,000IDR", Budget(10.5e9, idr=True))],
)  # fmt: skip
def test_budgets_in_staff_or_rupiah(text: str, budget: Budget) -> None:
    assert parse_budget(text) == budget


@pytest.mark.parametrize(
    ("text", "message"),
    [("0", "must be more than zero"), ("-5", "must be more than zero"),
     ("lots", "expected a number of staff"), ("2.5", "must be whole"), ("3bn", "needs its currency")],
)  # fmt: skip
def test_bad_budgets_are_named(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_budget(text)
    with pytest.raises(ScenarioError, match="mean_speed: not a target"):
        check_targets(["mean_speed"])


@pytest.fixture
def scenario(synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "few-desks.toml"
    path.write_text(SCENARIO)
    return path


def test_bad_input_is_one_line_and_exit_2(
    scenario: Path, synthetic_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--data", str(synthetic_dir), "--workers", "1", "--out", str(tmp_path / "a")]
    for options, message in (
        (["--budget", "0"], "--budget '0': must be more than zero"),
        (["--budget", "-3"], "must be more than zero"),
        (["--budget", "100", "--target", "mean_speed"], "--target mean_speed: not a target"),
        (["--budget", "4"], "below the least staffing the scenario allows"),
        (["--budget", "1 IDR"], "below the least staffing"),
    ):
        assert main(["allocate", str(scenario), *options, *common]) == 2
        err = capsys.readouterr().err
        assert message in err, err
        assert err.count("\n") == 1


def test_allocation_meets_more_targets_than_today_within_the_budget(
    scenario: Path, synthetic_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    out = tmp_path / "alloc"
    # today: 25 positions (a desk officer and a crew in each of the 5 kelurahan, 15 agency
    # teams); one desk officer is too few for 100 reports a day: 10 more to spread
    args = ["allocate", str(scenario), "--data", str(synthetic_dir), "--workers", "1",
            "--replications", "2", "--rounds", "3", "--out", str(out)]  # fmt: skip
    assert main([*args, "--budget", "35"]) == 0
    capsys.readouterr()
    kpis = pd.read_csv(out / "kpis.csv").set_index("allocation")
    meet = "kelurahan meeting coordination_mean_6h"
    assert kpis.at["proposed", meet] > kpis.at["today", meet]
    assert kpis.at["proposed", meet] >= kpis.at["uniform", meet]
    assert kpis.at["today", "staff positions"] == 25
    assert kpis.at["proposed", "staff positions"] <= 35
    per_kel = pd.read_csv(out / "allocation.csv")
    assert (per_kel["proposed desk officers"] >= 1).all()
    page = (out / "report.html").read_text()
    assert "KN" in page
    assert (out / "allocation_map.png").is_file()
