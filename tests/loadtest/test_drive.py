"""`twin drive`: a twin run played through the real API (a `twin serve` on loopback)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from intake.bench import running_server
from intake.db import make_engine, migrate
from loadtest.drive import compare_kpis
from twin_cli.main import main

# the first simulated hours are after midnight: a flat day and a desk open round the clock
SCENARIO = """
[run]
seed = 4
[demand]
reports_per_day = 900.0
hourly_profile = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                  1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
[coordination]
office_open_h = 0.0
office_close_h = 24.0
"""
RATES = {
    "INTAKE_KPI_CACHE_SECONDS": "0",
    "INTAKE_RATE_REPORTS_KEY": "100000/second",
    "INTAKE_RATE_REPORTS_ADDRESS": "100000/second",
}


def test_drive_agrees_with_intake_kpis(
    synthetic_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    env = {**RATES, "INTAKE_MEDIA_DIR": str(tmp_path / "media")}
    with running_server(url, data_dir=str(synthetic_dir), env=env) as (host, _):
        code = main(["drive", str(scenario), "--host", host, "--database-url", url,
                     "--speed", "600", "--hours", "4", "--data", str(synthetic_dir),
                     "--out", str(tmp_path / "out")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 failed" in out
    table = pd.read_csv(tmp_path / "out" / "kpi_agreement.csv")
    assert table["agree"].all()
    assert set(table["kpi"]) >= {"mean_coordination_h", "mean_resolution_h"}
    assert table["intake"].notna().any()
    # every kind of request ran: posts (native and Open311), coordination, claims, resolutions
    records = pd.read_csv(tmp_path / "out" / "twin_records.csv")
    driven = records[records["received_h"] <= 4]
    assert (driven["channel"] == "qlue").any()
    assert driven["closed_h"].le(4).any()
    assert (driven["outcome"] == "agency").any() or (driven["outcome"] == "ppsu").any()

    # the verdict can fail: the twin's times read at the wrong speed do not agree
    twin = table.pivot(index="kelurahan", columns="kpi", values="twin") / 3600
    intake = table.pivot(index="kelurahan", columns="kpi", values="intake") / 3600
    _, ok = compare_kpis(intake, twin * 1.5, speed=3600)
    assert not ok


def test_a_forecast_taken_during_a_drive_beats_the_naive_one(
    synthetic_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Forecast at 10 h from intake's database, scored on the next 20 h of the drive."""
    import json

    url = f"sqlite:///{tmp_path / 'intake.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        "[run]\nseed = 4\n[demand]\nreports_per_day = 400.0\n"
        "[coordination]\nstaff_per_kelurahan = 1\n"  # a desk that falls behind: breaches
    )
    env = {**RATES, "INTAKE_MEDIA_DIR": str(tmp_path / "media")}
    with running_server(url, data_dir=str(synthetic_dir), env=env) as (host, _):
        main(["drive", str(scenario), "--host", host, "--database-url", url,
              "--speed", "3600", "--hours", "30", "--data", str(synthetic_dir),
              "--out", str(tmp_path / "out"), "--forecast-at", "10", "--forecast-hours", "20",
              "--forecast-replications", "8"])  # fmt: skip
    printed = capsys.readouterr().out
    scores = json.loads((tmp_path / "out" / "forecast_accuracy.json").read_text())
    b6, back = scores["breaches_6h"], scores["backlog"]
    assert b6["happened"] > 10, printed  # a test with something to forecast
    assert b6["brier_twin"] < b6["brier_naive"], printed
    assert back["mae_twin"] < back["mae_naive"], printed
    assert back["real"][0] == scores["open_reports"]  # the forecast started from the real backlog


def test_officer_drive_is_a_load_profile(
    synthetic_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`twin loadtest --profile officer-drive` starts the API and drives it; thresholds apply."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    code = main(["loadtest", "--profile", "officer-drive", "--duration", "15",
                 "--scenario", str(scenario), "--data", str(synthetic_dir),
                 "--out", str(tmp_path / "out")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.rstrip().endswith("PASS")
    assert "3 simulated hours at 720x" in out
    assert (tmp_path / "out" / "kpi_agreement.csv").is_file()
