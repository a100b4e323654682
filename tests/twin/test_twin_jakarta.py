"""The twin on the real Jakarta data (skipped only off CI without the data)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from twin.model.demand import flood_prone_kelurahan
from twin.model.runner import run_scenario
from twin.model.scenario import Scenario, load_scenario
from twin_cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_flood_day_surges_in_flood_prone_kelurahan(real_city) -> None:  # type: ignore[no-untyped-def]
    base = Scenario(name="flood")
    scenario = dataclasses.replace(
        base,
        run=dataclasses.replace(base.run, days=3),
        demand=dataclasses.replace(
            base.demand, flood=dataclasses.replace(base.demand.flood, days=(1,), multiplier=4.0)
        ),
    )
    r = run_scenario(real_city, scenario).reports
    per_day = np.bincount((r["received_h"] // 24).astype(int), minlength=3)
    assert per_day[1] > 3 * per_day[0]
    surge = r[r["flood_day_surge"]]
    flood_day = pd.Timestamp(base.run.start_date, tz="Asia/Jakarta") + pd.Timedelta(days=1)
    assert (surge["submitted_at"].dt.normalize() == flood_day).all()  # written on the flood day
    assert (surge["received_h"] >= 24).all()
    prone = set(real_city.kelurahan.codes[flood_prone_kelurahan(real_city)])
    assert set(surge["kelurahan_code"]) <= prone
    assert (surge["category"] == "flood").mean() > 0.6


def test_jakarta_2016_run_from_the_command_line(real_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["run", str(ROOT / "scenarios" / "jakarta-2016.toml"), "--days", "10", "--out", str(out)]
    assert main([*args, "--data", str(real_data_dir), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "jakarta-2016"
    assert 8_000 < summary["reports"] < 11_000  # ~932 a day
    kel = pd.read_csv(out / "kelurahan.csv")
    assert len(kel) == 267
    ranked = kel[kel["rank"] > 0]  # at least 20 reports
    assert sorted(ranked["rank"])[0] == 1
    assert (kel.loc[kel["rank"] == 0, "reports"] < 20).all()
    assert len(ranked) > 150
    assert len(summary["best_15"]) == 15
    assert len(summary["worst_15"]) == 15
    assert {"code", "name", "kota", "rank"} == set(summary["worst_15"][0])
    report = (out / "report.html").read_text()
    assert "Slowest ranked kelurahan" in report
    assert "{'code'" not in report  # names in sentences, not data dumped
    assert load_scenario(ROOT / "scenarios" / "jakarta-2016.toml").run.days == 31


def test_validate_and_calibrate_commands(real_data_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import shutil

    small = ["--replications", "3", "--workers", "2", "--data", str(real_data_dir)]
    # the committed periods pass in-sample at CI size (December 2016 whole: 31 days, as it was
    # fitted; 2020 a week; each after the warm-up, with the follow-up), each fitted KPI within
    # tolerance; predicted ones are reported, not judged
    rows = []
    for period, days in (("jakarta-2016", []), ("jakarta-2020", ["--days", "7"])):
        out = tmp_path / f"v-{period}"
        assert main(["validate", period, *days, "--out", str(out), *small]) == 0
        rows.append(pd.read_csv(out / "validation.csv"))
    table = pd.concat(rows)
    fitted = table[table["check"] == "in-sample"]
    assert set(fitted["kpi"]) == {
        "reports_per_day",
        "resolved_share",
        "mean_resolution_of_resolved_h",
    }
    assert fitted["pass"].all()
    assert set(table["check"]) == {"in-sample", "leave-one-out"}
    assert set(table.loc[table["check"] == "leave-one-out", "role"]) == {"predicted"}
    assert (table["pi_low"] <= table["pi_high"]).all()
    out = tmp_path / "v2024"
    assert main(["validate", "jakarta-2024", "--days", "42", "--out", str(out), *small]) == 0
    assert pd.read_csv(out / "validation.csv").query("check == 'in-sample'")["pass"].all()
    # a deliberately wrong scenario (no PPSU crews at all) must fail in-sample
    wrong = tmp_path / "wrong"
    (wrong / "scenario").mkdir(parents=True)
    (wrong / "scenario" / "no-crews.toml").write_text(
        f'base = "{ROOT / "scenarios" / "jakarta-2016.toml"}"\n[crews]\nper_kelurahan = 0\n'
    )
    text = (ROOT / "scenarios" / "periods" / "jakarta-2016.toml").read_text()
    text = text.replace('"../jakarta-2016.toml"', '"scenario/no-crews.toml"')
    text = text.replace('posterior = "', f'posterior = "{ROOT}/scenarios/periods/')
    (wrong / "jakarta-2016.toml").write_text(text)
    out = tmp_path / "v-wrong"
    args = ["--periods", str(wrong), "--out", str(out)]
    assert main(["validate", *args, *small]) == 1
    verdicts = pd.read_csv(out / "validation.csv").set_index("kpi")["pass"]
    assert verdicts["reports_per_day"]  # the volume is an input: still right
    assert not verdicts["resolved_share"]
    # calibration writes the accepted draws, their ranges and trade-offs, and a calibrated
    # scenario that points to them; never beside the shipped files unless told
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    periods = tmp_path / "scenarios" / "periods"
    out = tmp_path / "fits" / "fit-2020.toml"
    common = ["--population", "4", "--max-simulations", "8", "--generations", "2", "--days", "3",
              "--workers", "1", "--data", str(real_data_dir)]  # fmt: skip
    assert main(["calibrate", "jakarta-2020", "--periods", str(periods), "--out", str(out),
                 *common]) == 0  # fmt: skip
    calibrated = load_scenario(out)
    report = tmp_path / "fits" / "fit-2020-report"
    posterior = pd.read_csv(report / "posterior.csv")
    assert len(posterior) == 4
    assert calibrated.coordination.unanswered_share in set(
        posterior["coordination.unanswered_share"].round(6)
    ) or any(
        abs(posterior["coordination.unanswered_share"] - calibrated.coordination.unanswered_share)
        < 1e-5
    )
    assert "fit-2020-report" in out.read_text()
    for name in (
        "marginals.csv",
        "trade_offs.csv",
        "generations.csv",
        "posterior.png",
        "report.html",
    ):
        assert (report / name).is_file()
    assert not (ROOT / "scenarios" / "fit-2020.toml").exists()
    capsys.readouterr()
    assert main(["calibrate", "jakarta-2020", "--periods", str(periods), "--out", str(out),
                 *common]) == 2  # fmt: skip
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["calibrate", "jakarta-2019", "--periods", str(periods), *common]) == 2
    assert "never used for fitting" in capsys.readouterr().err
