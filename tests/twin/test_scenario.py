"""Strict scenario loading: every mistake is one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.errors import ScenarioError
from twin.model.scenario import Scenario, load_scenario
from twin_cli.main import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[crews]\ndispatch = 'closest'", "crews.dispatch: unknown policy 'closest'"),
        ("[crews]\npooling = 'kota'", "crews.pooling: unknown pooling"),
        ("[demand]\nreports_per_day = -5", "demand.reports_per_day must be a non-negative number"),
        ("[demand]\nreports_per_dya = 5", "demand.reports_per_dya: unknown field"),
        ("colour = 'red'", "colour: unknown field"),
        ("[crews]\nper_kelurahan = 'many'", "crews.per_kelurahan: expected a whole number"),
        ("[crews]\nper_kelurahan = 4.5", "crews.per_kelurahan: expected a whole number"),
        ("[run]\ndays = 0", "run.days must be >= 1"),
        ("[run]\nwarm_up_days = -1", "run.warm_up_days must be >= 0"),
        ("[run]\nfollow_up_days = -3", "run.follow_up_days must be >= 0"),
        ("[run]\nwarm_up_days = 'week'", "run.warm_up_days: expected a whole number"),
        ("[run]\nfollow_up_days = 2.5", "run.follow_up_days: expected a whole number"),
        ("[demand]\nhourly_profile = [1, 2]", "demand.hourly_profile must have 24 values"),
        (
            "[demand]\ncategories = { garbage = -1.0 }",
            "demand.categories.garbage must be a non-negative",
        ),
        (
            "[demand]\ncategories = { potholes = 1.0 }",
            "crews.work: no work-time distribution for category potholes",
        ),
        (
            "[crews.work.garbage]\ndist = 'weibull'",
            "crews.work.garbage.dist: unknown distribution 'weibull'",
        ),
        ("[coordination]\nagency_scale = -1.5", "coordination.agency_scale must be a non-negative"),
        ("[crews]\nshifts = [[20.0, 8.0]]", "crews.shifts[0]"),
        ("[demand.flood]\ndays = [400]", "demand.flood.days: day 400 is outside the run"),
        ("[city.speeds_kph]\nprimary = 0", "city.speeds_kph.primary must be a positive number"),
        ("[coordination]\nenabled = 'yes'", "coordination.enabled: expected true or false"),
        ("this is = not toml =", "not valid TOML"),
        ("[routing.trees]\nppsu = 0.5\ndistamhut = 0.4", "routing.trees: shares sum to 0.9, not 1"),
        ("[routing.trees]\nppsu = 0.5\nparks = 0.5", "routing.trees.parks: unknown agency"),
        (
            "[demand]\ncategories = { potholes = 1.0 }\n[crews.work.potholes]\nmean_min = 60.0",
            "routing: category 'potholes' has no route",
        ),
        ("[agencies.dishub]\nteams_per_kota = 0", "agencies.dishub.teams_per_kota: no teams"),
        ("[agencies.sda]\nopen_h = 17.0", "agencies.sda: hours must satisfy"),
        ("[coordination]\nagency_scale = 5.0", "coordination.agency_scale: 5 x routing."),
        ("[crews]\nshifts = [[6.0, 14.0], [12.0, 20.0]]", "crews.shifts: [6.0, 14.0] overlaps"),
        ("[crews]\nshifts = [[6.0, 14.0], [22.0, 31.0]]", "runs past midnight into the shift"),
        ("[crews]\nstaffing = 'random'", "crews.staffing: unknown rule 'random'"),
        ("[coordination]\ndiscipline = 'lifo'", "coordination.discipline: unknown discipline"),
        ("[coordination]\nworking_days = [7]", "coordination.working_days[0] must be a weekday"),
        ("[coordination]\npatience_h = -1", "coordination.patience_h must be a non-negative"),
        (
            "[run]\nstart_date = '2020-01-01'\ndays = 31\n[[changes]]\ndate = '2020-03-01'\n"
            "field = 'coordination.staff_per_kelurahan'\nvalue = 1",
            "changes[0].date: 2020-03-01 is outside the run",
        ),
        (
            "[run]\nstart_date = '2020-01-01'\n[[changes]]\ndate = '2020-01-05'\n"
            "field = 'crews.dispatch'\nvalue = 1",
            "changes[0].field: 'crews.dispatch' cannot change within a run",
        ),
        ("[demand]\nmonthly_profile = [1.0, 2.0]", "demand.monthly_profile must have 12 values"),
    ],
)
def test_bad_scenarios_name_the_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert fragment in message
    assert message.startswith(str(path))
    assert "\n" not in message


def test_cli_refuses_a_bad_scenario_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[crews]\ndispatch = 'closest'\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "crews.dispatch" in err
    assert "Traceback" not in err
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "scenario file not found" in capsys.readouterr().err


def test_shipped_scenarios_load() -> None:
    s = load_scenario(ROOT / "scenarios" / "jakarta-2016.toml")
    assert s.name == "jakarta-2016"
    assert s.demand.reports_per_day == pytest.approx(932.0)
    assert s.crews.crews_per_kelurahan == 7


def test_base_file_and_partial_tables(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(
        "[crews]\nper_kelurahan = 20\n[crews.work.garbage]\nmean_min = 10.0\n"
    )
    (tmp_path / "variant.toml").write_text("base = 'base.toml'\n[crews]\ndispatch = 'fifo'\n")
    s = load_scenario(tmp_path / "variant.toml")
    assert (s.crews.per_kelurahan, s.crews.dispatch) == (20, "fifo")
    assert s.crews.work["garbage"].mean_min == 10.0
    assert s.crews.work["garbage"].sd_min == Scenario().crews.work["garbage"].sd_min
    assert "trees" in s.crews.work


def test_every_scenario_field_is_documented() -> None:
    import dataclasses

    readme = (ROOT / "scenarios" / "README.md").read_text()
    missing = []
    for section in dataclasses.fields(Scenario):
        default = getattr(Scenario(), section.name)
        names = (
            [f.name for f in dataclasses.fields(default)]
            if dataclasses.is_dataclass(default)
            else [section.name]
        )
        missing += [
            f"{section.name}.{n}"
            for n in names
            if f"`{n}`" not in readme and f"`{n}." not in readme
        ]
    assert not missing, f"undocumented scenario fields: {missing}"
