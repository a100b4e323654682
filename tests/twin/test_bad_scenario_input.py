"""Bad scenario input found by an outside tester: each case must end with one line naming the
field and exit code 2, never a traceback, a silent nonsense result or a lost earlier result.

Every test here reproduced a defect (a traceback, a silent nonsense result, a lost earlier
result) before it was fixed; they stay as regression tests. Runs use the five-kelurahan synthetic
city (a second each).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from twin.errors import ScenarioError
from twin_cli.main import main

CODES = ("31.71.01.1001", "31.71.01.1002", "31.71.02.1001", "31.71.02.1002", "31.71.02.1003")
SHORT = "[run]\ndays = 2\nwarm_up_days = 0\nfollow_up_days = 1\n"


@pytest.fixture
def run_twin(synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):  # type: ignore[no-untyped-def]
    """`twin run` of a scenario text on the synthetic city: (exit code, stderr, output folder)."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))

    def run(text: str, *options: str, out: Path | None = None) -> tuple[int, str, Path]:
        path = tmp_path / "s.toml"
        path.write_text(textwrap.dedent(text))
        out = out or tmp_path / "out"
        argv = ["run", str(path), "--data", str(synthetic_dir), "--out", str(out), "--quiet"]
        code = main([*argv, *options])
        return code, capsys.readouterr().err, out

    return run


def refused(result: tuple[int, str, Path], field: str) -> None:
    code, err, out = result
    assert "Traceback" not in err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]  # \r ends a progress bar line
    errors = [line for line in lines if line.startswith("twin: error: ")]
    assert len(errors) == 1, err
    assert field in errors[0], err
    assert not out.exists(), f"a refused run left {out} behind"


def staff_table(tmp_path: Path, first: str) -> Path:
    table = tmp_path / "staff.csv"
    table.write_text(
        "kelurahan_code,staff\n" + f"{CODES[0]},{first}\n" + "".join(f"{c},2\n" for c in CODES[1:])
    )
    return table


@pytest.mark.parametrize("date", ["yesterday", "2016-02-30", "", "2016-12-01T10:00"])
def test_a_start_date_that_is_not_a_date_is_refused(date: str) -> None:
    from twin.model.scenario import scenario_from_dict

    with pytest.raises(ScenarioError, match=r"run\.start_date"):
        scenario_from_dict({"run": {"start_date": date}})


def test_a_run_past_the_calendar_is_refused() -> None:
    from twin.model.scenario import scenario_from_dict

    with pytest.raises(ScenarioError, match=r"run\.days"):
        scenario_from_dict({"run": {"days": 1_000_000_000}})


def test_a_negative_seed_in_the_file_is_refused(run_twin) -> None:  # type: ignore[no-untyped-def]
    refused(run_twin(SHORT + "seed = -5\n"), "run.seed")


def test_a_negative_seed_option_is_refused(run_twin) -> None:  # type: ignore[no-untyped-def]
    refused(run_twin(SHORT, "--seed", "-1"), "--seed")


@pytest.mark.parametrize("volume", ["0.0", "1e-9"])
def test_zero_demand_runs_or_is_refused_but_never_crashes(run_twin, volume: str) -> None:  # type: ignore[no-untyped-def]
    code, err, _ = run_twin(SHORT + f"[demand]\nreports_per_day = {volume}\n")
    assert "Traceback" not in err
    assert code == 0, err  # an empty cohort: no KPI, no target judged


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("[demand]\nreports_per_day = 1e300\n", "demand.reports_per_day"),
        (
            "[coordination.handling]\ndist = 'exponential'\nmean_min = 1e300\n",
            "coordination.handling",
        ),
        ("[demand.flood]\ndays = [0]\nmultiplier = inf\n", "demand.flood.multiplier"),
        ("[demand.flood]\ndays = [0]\nmultiplier = nan\n", "demand.flood.multiplier"),
        ("[city]\ndetour_factor = nan\n", "city.detour_factor"),
        ("[city]\ndetour_factor = inf\n", "city.detour_factor"),
    ],
)
def test_absurd_numbers_are_refused(run_twin, body: str, field: str) -> None:  # type: ignore[no-untyped-def]
    refused(run_twin(SHORT + body), field)


@pytest.mark.parametrize("value", ["inf", "100000000000000000000"])
@pytest.mark.parametrize("group", ["coordination", "crews"])
def test_a_staff_table_count_that_is_not_a_count_is_refused(
    run_twin, tmp_path: Path, group: str, value: str
) -> None:  # type: ignore[no-untyped-def]
    table = staff_table(tmp_path, value)
    refused(run_twin(SHORT + f"[{group}]\nstaff_table = '{table}'\n"), f"{group}.staff_table")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ('field = "coordination.staff_per_kelurahan"\nvalue = 1e300', "changes[0]"),
        ('field = "coordination.staff_per_kelurahan"\nvalue = 1e19', "changes[0]"),
        ('field = "demand.reports_per_day"', "changes[0].value"),  # no value: silently 0
    ],
)
def test_a_bad_dated_change_is_refused(run_twin, change: str, field: str) -> None:  # type: ignore[no-untyped-def]
    refused(run_twin(SHORT + f'[[changes]]\ndate = "2016-12-02"\n{change}\n'), field)


def test_a_refused_run_leaves_no_folder(run_twin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    table = staff_table(tmp_path, "-1")
    refused(run_twin(SHORT + f"[crews]\nstaff_table = '{table}'\n"), "crews.staff_table")


def test_a_refused_run_with_overwrite_keeps_the_earlier_result(run_twin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, err, out = run_twin(SHORT)
    assert code == 0, err
    before = sorted(p.name for p in out.iterdir())
    assert "summary.json" in before
    table = staff_table(tmp_path, "-1")
    code, err, _ = run_twin(SHORT + f"[crews]\nstaff_table = '{table}'\n", "--overwrite", out=out)
    assert code == 2, err
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.parametrize(
    "line", ['days = "1"', "days = [1]", "targets = 5", 'staffing = ["crews.per_kelurahan"]']
)
def test_a_sweep_field_of_the_wrong_type_is_refused(tmp_path: Path, line: str) -> None:
    from twin.experiments.sweep import load_sweep

    (tmp_path / "s.toml").write_text(SHORT)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'scenario = "s.toml"\n{line}\n[grid]\n"crews.per_kelurahan" = [10, 20]\n')
    with pytest.raises(ScenarioError, match=line.split(" ")[0]):
        load_sweep(sweep)


@pytest.mark.parametrize("calibrate", ["5", '"coordination.patience_h"'])
def test_a_period_calibrate_that_is_not_a_list_is_refused(tmp_path: Path, calibrate: str) -> None:
    from twin.experiments.periods import load_period

    (tmp_path / "s.toml").write_text(SHORT)
    period = tmp_path / "p.toml"
    period.write_text(
        f'start = 2016-12-01\nend = 2016-12-31\nscenario = "s.toml"\nfit = true\n'
        f"calibrate = {calibrate}\n"
        '[[published]]\nkpi = "reports_per_day"\nvalue = 900.0\ntolerance = 0.1\n'
        'relative = true\nrole = "volume"\n'
    )
    with pytest.raises(ScenarioError, match="calibrate"):
        load_period(period)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("[crews]\nper_kelurahan = 1000000000\n", "crews.per_kelurahan"),
        ("[coordination]\nstaff_per_kelurahan = 1000000000\n", "coordination.staff_per_kelurahan"),
        ("[agencies.dlh]\nteams_per_kota = 1000000000\n", "agencies.dlh.teams_per_kota"),
        ("[agencies.dlh]\nworking_days = []\n", "agencies.dlh.working_days"),
        ("[demand]\naccess_mean_m = 1e300\n", "demand.access_mean_m"),
        ("[demand]\ndaily_cv = 1e300\n", "demand.daily_cv"),
        ("start_date = '9999-12-01'\n", "run.start_date"),
        ("[demand.flood]\ndays = [0]\nmultiplier = 1e9\n", "demand.flood.multiplier"),
        ("[crews]\npriority_order = ['lava']\n", "crews.priority_order[0]"),
    ],
)
def test_more_absurd_input_is_refused_before_any_draw(run_twin, body: str, field: str) -> None:  # type: ignore[no-untyped-def]
    """Values that ate the machine's memory (a billion crews) or overflowed a draw, found by the
    same outside tester after the first fixes (a body without a table header goes to [run])."""
    refused(run_twin(SHORT + body), field)


def test_a_listed_channel_keeps_its_defaults_for_what_it_omits() -> None:
    """The channels table is the whole mix (only the listed channels), but a listed channel keeps
    its default share and delay: JAKI alone with a 10-minute delay is a valid mix, not "weights
    must not all be zero"."""
    from twin.model.scenario import Scenario, scenario_from_dict

    default = Scenario().demand.channels
    changed = scenario_from_dict({"demand": {"channels": {"jaki": {"entry_delay_min": 10.0}}}})
    channels = changed.demand.channels
    assert set(channels) == {"jaki"}
    assert channels["jaki"].entry_delay_min == 10.0
    assert channels["jaki"].share == default["jaki"].share
