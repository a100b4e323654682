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
        ("[city.speeds_kph]\nprimary = 0", "city.speeds_kph.primary must be a positive speed"),
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


def change(field: str, value: str, date: str = "2020-01-05", before: str = "") -> str:
    """A scenario file of 31 days from 2020-01-01 with one dated change (after `before`)."""
    return (
        f"[run]\nstart_date = '2020-01-01'\ndays = 31\n{before}"
        f"[[changes]]\ndate = '{date}'\nfield = '{field}'\nvalue = {value}\n"
    )


BAD_CHANGES = [
    (change("crews.pooling", "'kecamatan'"), "changes[0].field: 'crews.pooling' cannot change"),
    (
        change("agencies.dishub.teams_per_kota", "'many'"),
        "changes[0].value: agencies.dishub.teams_per_kota takes a whole number, got the string 'many'",
    ),
    (
        change("agencies.sda.handover.mean_min", "'slow'"),
        "changes[0].value: agencies.sda.handover.mean_min takes a number, got the string 'slow'",
    ),
    (
        change("crews.dispatch", "1"),
        "changes[0].value: crews.dispatch takes a policy name (nearest, least_loaded, fifo, priority), got the number 1",
    ),
    (
        change("crews.dispatch", "'closest'"),
        "changes[0].value: crews.dispatch: unknown policy 'closest'; choose from nearest, least_loaded",
    ),
    (
        change("agencies.parks.teams_per_kota", "3"),
        "changes[0].field: unknown agency 'parks' in 'agencies.parks.teams_per_kota'; choose from",
    ),
    (change("agencies.dishub.teams_per_kota", "-1"), "changes[0].value must be a non-negative"),
    (
        change("agencies.dishub.teams_per_kota", "2.5"),
        "changes[0].value: agencies.dishub.teams_per_kota takes a whole number, got 2.5",
    ),
    (change("crews.dispatch", "'fifo'", date="2020-03-01"), "changes[0].date: 2020-03-01 is outside"),
    (change("crews.dispatch", "'fifo'", date="2020-01-01"), "changes[0].date: 2020-01-01 is outside"),
    (change("crews.dispatch", "true"), "changes[0].value: expected a number or a string, got True"),
    (
        change("agencies.dishub.teams_per_kota", "0"),
        "changes[0] (agencies.dishub.teams_per_kota = 0 from 2020-01-05): agencies.dishub.teams_per_kota: no teams, but routing.illegal_parking sends it 0.3",
    ),
    (  # nothing routed there any more, but the jobs it got before would wait forever
        change(
            "agencies.dishub.teams_per_kota", "0", date="2020-01-10",
            before="[[changes]]\ndate = '2020-01-05'\nfield = 'coordination.agency_scale'\nvalue = 0\n",
        ),
        "changes[1].value: agencies.dishub.teams_per_kota = 0 from 2020-01-10, but routing.illegal_parking sends dishub reports before it",
    ),
    (
        change(
            "agencies.sda.handover.mean_min", "60",
            before="[agencies.sda.handover]\ndist = 'fixed'\nmean_min = 0.0\nsd_min = 0.0\n",
        ),
        "changes[0].field: agencies.sda.handover.mean_min cannot change: the scenario's mean is 0",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fragment"), BAD_CHANGES)
def test_bad_changes_stop_twin_run_with_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragment: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert fragment in err, err
    assert "Traceback" not in err


def test_good_changes_load_with_their_types(tmp_path: Path) -> None:
    no_parking_desk = "[coordination]\nagency_scale = 0.0\n"  # dishub gets nothing at first
    path = tmp_path / "good.toml"
    path.write_text(
        change("agencies.dishub.teams_per_kota", "0", before=no_parking_desk)
        + "[[changes]]\ndate = '2020-01-06'\nfield = 'crews.dispatch'\nvalue = 'fifo'\n"
        + "[[changes]]\ndate = '2020-01-07'\nfield = 'agencies.sda.handover.mean_min'\n"
        + "value = 480\n[[changes]]\ndate = '2020-01-08'\n"
        + "field = 'agencies.dishub.teams_per_kota'\nvalue = 2\n[[changes]]\n"
        + "date = '2020-01-09'\nfield = 'coordination.agency_scale'\nvalue = 1.0\n"
    )
    s = load_scenario(path)
    assert [c.value for c in s.changes] == [0.0, "fifo", 480.0, 2.0, 1.0]
    assert s.schedule("agencies.dishub.teams_per_kota") == [(0, 3.0), (4, 0.0), (7, 2.0)]


def test_the_readme_example_of_changes_loads(tmp_path: Path) -> None:
    readme = (ROOT / "scenarios" / "README.md").read_text()
    section = readme.split("## `[[changes]]`")[1]
    example = section.split("```toml\n")[1].split("```")[0]
    path = tmp_path / "example.toml"
    path.write_text(f"base = '{ROOT / 'scenarios' / 'jakarta-2016.toml'}'\n{example}")
    s = load_scenario(path)
    assert [c.value for c in s.changes] == [1.0, "nearest"]


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
