"""Bad input to the studies (`twin sweep`, `twin validate`, `twin compare`): each case ends with
one line naming the field and exit code 2, before any run and before any output folder is
claimed, never a traceback, a silent nonsense result or a lost earlier result.

Runs use the five-kelurahan synthetic city; a refusal must come before `Runner.run`, which the
`no_runs` fixture turns into a test failure.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from twin.errors import ScenarioError
from twin.experiments.replications import Runner
from twin_cli.main import main

if TYPE_CHECKING:
    from collections.abc import Callable

CODES = ("31.71.01.1001", "31.71.01.1002", "31.71.02.1001", "31.71.02.1002", "31.71.02.1003")
SHORT = "[run]\ndays = 1\nwarm_up_days = 0\nfollow_up_days = 1\n[demand]\nreports_per_day = 40.0\n"
GRID = '[grid]\n"crews.per_kelurahan" = [10, 20]\n'
VOLUME = (
    '[[published]]\nkpi = "reports_per_day"\nvalue = 40.0\ntolerance = 0.1\nrelative = true\n'
    'role = "volume"\n'
)
TARGET = '[[published]]\nkpi = "resolved_share"\nvalue = 0.5\ntolerance = 0.05\n'
PERIOD = 'start = 2016-12-01\nend = 2016-12-02\nscenario = "scenario/s.toml"\n'
FITTED = PERIOD + 'fit = true\ncalibrate = ["crews.proof_min"]\n'

Study = tuple[int, str, Path]


@pytest.fixture
def twin(
    synthetic_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Study]:
    """`twin COMMAND ARGS` on the synthetic city: (exit code, stderr, output folder)."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # a default folder would land here, not in the project

    def run(command: str, *args: str, out: Path | None = None) -> Study:
        out = out or tmp_path / "out"
        common = ["--data", str(synthetic_dir), "--workers", "1", "--quiet", "--out", str(out)]
        code = main([command, *args, *common])
        return code, capsys.readouterr().err, out

    return run


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any replication started fails the test: the refusals must come before the first run."""

    def refuse(self: Runner, tasks: list[object]) -> list[object]:
        raise AssertionError(f"{len(tasks)} runs started before the input was refused")

    monkeypatch.setattr(Runner, "run", refuse)


def refused(result: Study, field: str) -> str:
    """Exit 2, exactly one ``twin: error:`` line naming `field`, no traceback, no folder."""
    code, err, out = result
    assert "Traceback" not in err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("twin: error: "), err
    assert field in lines[0], err
    assert not out.exists(), f"a refused study left {out} behind"
    return lines[0]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def staff_table(folder: Path, first: str = "2", *, codes: tuple[str, ...] = CODES) -> Path:
    rows = [f"{codes[0]},{first}", *(f"{c},2" for c in codes[1:])]
    return write(folder, "staff.csv", "kelurahan_code,staff\n" + "\n".join(rows) + "\n")


def earlier_result(out: Path) -> list[str]:
    """An earlier study's folder (twin's marker and a result file) that --overwrite may replace."""
    write(out, "provenance.json", "{}\n")
    write(out, "sweep.csv", "crews.per_kelurahan\n10\n")
    return sorted(p.name for p in out.iterdir())


# --- twin sweep ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('days = "1"', "days"),
        ("days = [1]", "days"),
        ("days = 0", "days"),
        ("days = 1.5", "days"),
        ("days = true", "days"),
        ("targets = 5", "targets"),
        ('targets = "resolution_mean_7d"', "targets"),
        ("targets = [5]", "targets"),
        ('staffing = ["crews.per_kelurahan"]', "staffing"),
        ("staffing = 5", "staffing"),
        ("replications = true", "replications"),
    ],
)
def test_a_sweep_field_of_the_wrong_type_is_refused(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None, line: str, field: str
) -> None:
    write(tmp_path, "s.toml", SHORT)
    sweep = write(tmp_path, "sweep.toml", f'scenario = "s.toml"\n{line}\n{GRID}')
    message = refused(twin("sweep", str(sweep)), f"{field}")
    assert message.startswith(f"twin: error: {sweep}: {field}"), message


def test_a_string_target_is_not_read_letter_by_letter(tmp_path: Path) -> None:
    from twin.experiments.sweep import load_sweep

    write(tmp_path, "s.toml", SHORT)
    sweep = write(
        tmp_path, "sweep.toml", f'scenario = "s.toml"\ntargets = "resolution_mean_7d"\n{GRID}'
    )
    with pytest.raises(ScenarioError, match="expected a list of target names") as caught:
        load_sweep(sweep)
    assert "'r' is not a target" not in str(caught.value)
    sweep.write_text(f'scenario = "s.toml"\ntargets = ["resolution_mean_7d"]\n{GRID}')
    assert load_sweep(sweep).targets == ("resolution_mean_7d",)


def test_a_sweep_scenario_that_is_not_a_file_name_is_refused(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None
) -> None:
    sweep = write(tmp_path, "sweep.toml", f"scenario = 5\n{GRID}")
    refused(twin("sweep", str(sweep)), "scenario: expected a file name")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ('"run.start_date" = ["nope"]', "run.start_date"),
        ('"run.start_date" = ["2016-12-01", "2016-02-30"]', "run.start_date"),
        ('"run.seed" = [1, -1]', "run.seed"),
        ('"run.days" = [0]', "run.days"),
        ('"crews.per_kelurahan" = [10, -10]', "crews.per_kelurahan"),
    ],
)
def test_every_grid_point_is_a_valid_scenario_before_any_run(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None, values: str, field: str
) -> None:
    write(tmp_path, "s.toml", SHORT)
    sweep = write(tmp_path, "sweep.toml", f'scenario = "s.toml"\n[grid]\n{values}\n')
    refused(twin("sweep", str(sweep)), field)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("missing.csv", "not found"),
        ("staff.csv:-1", "must be a whole number"),
        ("staff.csv:2.5", "must be a whole number"),
        ("unknown.csv", "unknown kelurahan code 31.99.99.9999"),
        ("short.csv", "is missing from"),
    ],
)
def test_a_bad_staff_table_in_the_grid_is_refused_before_any_run(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None, table: str, problem: str
) -> None:
    name, _, first = table.partition(":")
    if name == "staff.csv":
        staff_table(tmp_path, first)
    elif name == "unknown.csv":
        staff_table(tmp_path, codes=(*CODES, "31.99.99.9999")).rename(tmp_path / name)
    elif name == "short.csv":
        staff_table(tmp_path, codes=CODES[:-1]).rename(tmp_path / name)
    write(tmp_path, "s.toml", SHORT)
    # the second point is the bad one: the first would run, were tables read only by the runs
    good = staff_table(tmp_path / "good")
    sweep = write(
        tmp_path,
        "sweep.toml",
        f'scenario = "s.toml"\nreplications = 2\n[grid]\n"crews.staff_table" = ["{good}", "{name}"]\n'
        '"crews.per_kelurahan" = [10]\n',
    )
    message = refused(twin("sweep", str(sweep)), "crews.staff_table")
    assert problem in message
    assert "replications" not in message  # no progress bar shares the line


def test_a_refused_sweep_keeps_the_earlier_result_even_with_overwrite(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None
) -> None:
    write(tmp_path, "s.toml", SHORT)
    sweep = write(tmp_path, "sweep.toml", 'scenario = "s.toml"\n[grid]\n"run.seed" = [-1]\n')
    out = tmp_path / "earlier"
    before = earlier_result(out)
    code, err, _ = twin("sweep", str(sweep), "--overwrite", out=out)
    assert code == 2, err
    assert "run.seed" in err
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_staff_table_in_the_grid_is_relative_to_the_sweep_file_and_runs(
    twin: Callable[..., Study], tmp_path: Path
) -> None:
    from twin.experiments.sweep import load_sweep

    folder = tmp_path / "sweeps"
    table = staff_table(folder, "3")
    write(folder, "s.toml", SHORT)
    sweep = write(
        folder,
        "sweep.toml",
        'scenario = "s.toml"\nreplications = 2\n[grid]\n"crews.staff_table" = ["staff.csv"]\n'
        '"crews.per_kelurahan" = [10]\n',
    )
    assert load_sweep(sweep).grid["crews.staff_table"] == [str(table.resolve())]
    code, err, out = twin("sweep", str(sweep))  # run from tmp_path, not beside the file
    assert code == 0, err
    assert (out / "report.html").is_file()


# --- twin validate -------------------------------------------------------------------------


def periods(tmp_path: Path, *files: tuple[str, str]) -> Path:
    folder = tmp_path / "periods"
    write(folder / "scenario", "s.toml", SHORT)  # beside, not among, the period files
    for name, text in files:
        write(folder, name, text)
    return folder


@pytest.mark.parametrize("calibrate", ["5", '"crews.proof_min"', "[5]", '["crews.proof_min", ""]'])
def test_a_period_calibrate_that_is_not_a_list_of_names_is_refused(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None, calibrate: str
) -> None:
    text = PERIOD + f"fit = true\ncalibrate = {calibrate}\n" + VOLUME + TARGET
    folder = periods(tmp_path, ("p.toml", text))
    refused(twin("validate", "--periods", str(folder), "--replications", "2"), "calibrate")


def test_a_string_calibrate_is_not_read_letter_by_letter(tmp_path: Path) -> None:
    from twin.experiments.periods import load_period

    folder = periods(tmp_path, ("p.toml", FITTED + VOLUME + TARGET))
    assert load_period(folder / "p.toml").calibrate == ("crews.proof_min",)
    (folder / "p.toml").write_text(PERIOD + 'fit = true\ncalibrate = "crews.proof_min"\n' + VOLUME)
    with pytest.raises(ScenarioError, match="calibrate: expected a list"):
        load_period(folder / "p.toml")


def test_nothing_to_validate_is_refused_before_anything_is_written(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None
) -> None:
    # a never-fitted period, and no fitted period with accepted draws to predict it from
    folder = periods(tmp_path, ("p.toml", PERIOD + "fit = false\n" + VOLUME + TARGET))
    args = ("validate", "--periods", str(folder), "--replications", "2", "--days", "1")
    message = refused(twin(*args), "nothing to validate")
    assert "fit = false" in message
    out = tmp_path / "earlier"
    before = earlier_result(out)
    code, err, _ = twin(*args, "--overwrite", out=out)  # the rerun is refused the same way
    assert code == 2, err
    assert "nothing to validate" in err
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.parametrize("days", ["0", "-1"])
def test_validate_days_below_one_is_refused(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None, days: str
) -> None:
    folder = periods(tmp_path, ("p.toml", FITTED + VOLUME + TARGET))
    args = ("validate", "--periods", str(folder), "--replications", "2", "--days", days)
    refused(twin(*args), "--days")


def test_validate_refuses_assumptions_it_would_never_read(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None
) -> None:
    folder = periods(tmp_path, ("p.toml", FITTED + VOLUME + TARGET))
    args = ("validate", "--periods", str(folder), "--replications", "2", "--days", "1")
    refused(twin(*args, "--assumptions", str(tmp_path / "none.toml")), "--assumptions")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (("value = 40.0", "value = 0.0"), "volume must be > 0"),
        (("value = 40.0", "value = -5.0"), "volume must be > 0"),
        (("value = 40.0", 'value = "40"'), "value and tolerance must be numbers"),
        (("start = 2016-12-01", "start = 9999-12-01"), "start"),
        (('scenario = "scenario/s.toml"', "scenario = 5"), "scenario: expected a file name"),
    ],
)
def test_a_bad_period_is_refused_with_its_file(
    twin: Callable[..., Study],
    tmp_path: Path,
    no_runs: None,
    edit: tuple[str, str],
    field: str,
) -> None:
    text = (FITTED + VOLUME + TARGET).replace(*edit)
    folder = periods(tmp_path, ("p.toml", text))
    args = ("validate", "--periods", str(folder), "--replications", "2", "--days", "1")
    message = refused(twin(*args), field)
    assert str(folder / "p.toml") in message


def test_a_period_scenario_the_run_would_refuse_names_the_period(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None
) -> None:
    folder = periods(tmp_path, ("p.toml", FITTED + VOLUME + TARGET))
    staff_table(folder / "scenario", "-1")
    write(folder / "scenario", "s.toml", SHORT + '[crews]\nstaff_table = "staff.csv"\n')
    args = ("validate", "--periods", str(folder), "--replications", "2", "--days", "1")
    message = refused(twin(*args), "crews.staff_table")
    assert str(folder / "p.toml") in message


def test_validate_writes_its_report_and_a_failed_run_leaves_no_folder(
    twin: Callable[..., Study], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = periods(tmp_path, ("p.toml", FITTED + VOLUME + TARGET))
    args = ("validate", "--periods", str(folder), "--replications", "2", "--days", "1")
    code, err, out = twin(*args)
    assert {"validation.csv", "provenance.json", "report.html"} <= {p.name for p in out.iterdir()}
    passed = pd.read_csv(out / "validation.csv")["pass"].astype(bool).all()
    assert code == (0 if passed else 1), err  # the made-up target is judged either way

    def fail(self: Runner, tasks: list[object]) -> list[object]:
        raise ScenarioError("a run stopped half-way")

    monkeypatch.setattr(Runner, "run", fail)
    refused(twin(*args, out=tmp_path / "second"), "a run stopped half-way")


# --- twin compare --------------------------------------------------------------------------


def test_compare_refuses_before_claiming_its_folder(
    twin: Callable[..., Study], tmp_path: Path, no_runs: None
) -> None:
    a = write(tmp_path, "a.toml", SHORT)
    refused(twin("compare", str(a), "--replications", "2"), "at least two")
    table = staff_table(tmp_path, "-1")
    b = write(tmp_path, "b.toml", SHORT + f'[crews]\nstaff_table = "{table}"\n')
    refused(twin("compare", str(a), str(b), "--replications", "2"), "crews.staff_table")
    refused(twin("compare", str(a), str(a), "--replications", "2"), "names must differ")
    refused(twin("compare", str(a), str(b), "--replications", "1"), "--replications")
