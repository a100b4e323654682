"""`twin forecast` on a real intake database (SQLite and PostgreSQL), filled through the API."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from intake.db import SCHEMA_VERSION, make_engine, schema_version
from intake.twin_state import open_records
from tests.intake.conftest import POINT_A, Api
from tests.intake.test_officers import claim, coordinator_post, post_report, resolve
from twin.entities import STATUSES
from twin.model.warm_start import stage_of
from twin_cli.main import main

SCENARIO = """
[run]
seed = 5
[demand]
reports_per_day = 200.0
"""


def fill(api: Api, jpeg: bytes) -> dict[str, str]:
    """One report in every status intake has (two in disposisi: a crew, an agency)."""
    ids = {name: post_report(api, POINT_A) for name in
           ("menunggu", "koordinasi", "crew", "agency", "proses", "selesai")}  # fmt: skip
    assert (
        coordinator_post(api, ids["koordinasi"], "coordinate", api.coordinator).status_code == 200
    )
    assert (
        coordinator_post(api, ids["crew"], "dispatch", api.coordinator, crew="PPSU 1").status_code
        == 200
    )
    r = coordinator_post(api, ids["agency"], "handover", api.coordinator, agency="Dinas Bina Marga")
    assert r.status_code == 200
    assert claim(api, ids["proses"], api.officer).status_code == 200
    assert claim(api, ids["selesai"], api.officer).status_code == 200
    assert resolve(api, ids["selesai"], api.officer, jpeg).status_code == 200
    return ids


@pytest.fixture
def jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 40)).save(buf, "JPEG")
    return buf.getvalue()


def test_every_status_maps_to_its_stage(api: Api, jpeg: bytes) -> None:
    from intake import twin_state
    from twin.model import warm_start

    assert twin_state.OPEN_REPORT_COLUMNS == warm_start.OPEN_REPORT_COLUMNS  # one contract
    ids = fill(api, jpeg)
    engine = make_engine(api.settings.database_url)
    with engine.connect() as conn:
        records = open_records(conn, as_of=pd.Timestamp.now(tz="UTC").to_pydatetime())
    engine.dispose()
    by_id = records.set_index(records["report_id"].astype(str))
    assert ids["selesai"] not in by_id.index  # closed: not part of the state
    stages = {
        name: stage_of(row["status"], row["crew"], row["agency"])
        for name, rid in ids.items() if rid in by_id.index
        for row in [by_id.loc[rid]]
    }  # fmt: skip
    assert stages == {
        "menunggu": "desk", "koordinasi": "coordinated", "crew": "ppsu_queue",
        "agency": "agency", "proses": "in_hand",
    }  # fmt: skip
    assert by_id.loc[ids["menunggu"], "coordinated_at"] is pd.NaT
    assert pd.notna(by_id.loc[ids["agency"], "coordinated_at"])  # set on the hand-over
    # every status the twin knows has a stage (or is closed); anything else is refused
    assert [stage_of(s, None, None) for s in STATUSES] == [
        "desk",
        "coordinated",
        "ppsu_queue",
        "in_hand",
        None,
    ]
    from twin.errors import ScenarioError

    with pytest.raises(ScenarioError, match="unknown status 'ditolak'"):
        stage_of("ditolak", None, None)


def test_an_earlier_moment_is_read_from_the_history(api: Api) -> None:
    first = post_report(api, POINT_A)
    before = pd.Timestamp.now(tz="UTC")
    assert coordinator_post(api, first, "coordinate", api.coordinator).status_code == 200
    engine = make_engine(api.settings.database_url)
    with engine.connect() as conn:
        then = open_records(conn, as_of=before.to_pydatetime())
        now = open_records(conn, as_of=pd.Timestamp.now(tz="UTC").to_pydatetime())
    engine.dispose()
    assert then["status"].tolist() == ["menunggu"]
    assert then["coordinated_at"].isna().all()  # coordinated after that moment
    assert now["status"].tolist() == ["koordinasi"]


def test_forecast_writes_json_csv_and_map_and_compares(
    api: Api, jpeg: bytes, synthetic_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(api, jpeg)
    a = tmp_path / "a.toml"
    a.write_text(SCENARIO)
    b = tmp_path / "b.toml"
    b.write_text(SCENARIO + "[coordination]\nstaff_per_kelurahan = 6\n")
    out = tmp_path / "fc"
    args = ["forecast", str(a), "--database-url", api.settings.database_url, "--hours", "24",
            "--replications", "3", "--workers", "1", "--data", str(synthetic_dir),
            "--out", str(out), "--compare", str(b)]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    doc = json.loads((out / "forecast.json").read_text())
    assert doc["open_reports"] == 5
    assert len(doc["backlog_by_hour"]) == 25
    assert doc["backlog_by_hour"][0]["backlog_mean"] == 5  # the live backlog at the start
    assert set(doc["kpis_forecast"]["mean_coordination_h"]) == {"mean", "lo", "hi"}
    assert doc["kpis_so_far"]["reports"] == 6
    assert doc["comparison"]["scenario_b"] == "b"
    # three times the desk staff: fewer 6-hour breaches, paired on the same state and draws
    assert doc["comparison"]["b_minus_a"]["breaches_6h"]["mean"] < 0
    reports = pd.read_csv(out / "open_reports.csv")
    assert len(reports) == 5
    assert reports["p_breach_6h"].between(0, 1).all()
    assert (out / "breach_map.png").stat().st_size > 10_000
    assert len(pd.read_csv(out / "kelurahan.csv")) == 5  # every kelurahan of the synthetic city


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (["--as-of", "2099-01-01T00:00"], "is in the future"),
        (["--as-of", "2001-01-01T00:00"], "is before the first record"),
        (["--hours", "721"], "--hours must be in (0, 720]"),
        (["--as-of", "yesterday-ish"], "is not a time"),
    ],
)
def test_bad_moments_and_horizons_are_one_line_and_exit_2(
    api: Api, synthetic_dir: Path, change: list[str], fragment: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    post_report(api, POINT_A)
    code = main(["forecast", "--database-url", api.settings.database_url,
                 "--data", str(synthetic_dir), *change])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err, err
    assert err.count("\n") == 1, err


def test_unknown_kelurahan_and_schema_and_empty_database_are_refused(
    api: Api, synthetic_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def forecast(url: str) -> str:
        code = main(["forecast", "--database-url", url, "--data", str(synthetic_dir)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.count("\n") == 1, err
        return err

    url = api.settings.database_url
    assert "holds no reports" in forecast(url)
    post_report(api, POINT_A)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE status_history SET status = 'ditolak'"))
    assert "unknown status 'ditolak'" in forecast(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE status_history SET status = 'menunggu'"))
        conn.execute(sa.text("UPDATE reports SET kelurahan_code = '31.99.99.9999'"))
    assert "kelurahan '31.99.99.9999' is not in the scenario's city" in forecast(url)
    with engine.begin() as conn:
        conn.execute(
            schema_version.insert().values(version=99, applied_at=pd.Timestamp.now(tz="UTC"))
        )
    engine.dispose()
    assert f"schema version 99; this twin reads version {SCHEMA_VERSION}" in forecast(url)
    assert "not an intake database" in forecast(f"sqlite:///{tmp_path / 'other.db'}")
    assert "cannot read the database" in forecast("postgresql://nobody@127.0.0.1:1/none")


def test_the_api_serves_the_forecast_the_schedule_wrote(
    api: Api, jpeg: bytes, synthetic_dir: Path, tmp_path: Path
) -> None:
    import time

    from twin_cli.live import start_forecast_schedule

    r = api.client.get("/api/v1/forecast")
    assert r.status_code == 404
    assert "no forecast yet" in r.text
    fill(api, jpeg)
    scenario = tmp_path / "a.toml"
    scenario.write_text(SCENARIO)
    extra = [str(scenario), "--hours", "6", "--replications", "2", "--data", str(synthetic_dir)]
    stop = start_forecast_schedule(
        api.settings.database_url, api.settings.forecast_dir, every_min=60, extra=extra
    )
    try:
        deadline = time.monotonic() + 120
        while not (api.settings.forecast_dir / "forecast.json").exists():
            assert time.monotonic() < deadline, "the scheduled forecast never arrived"
            time.sleep(0.5)
    finally:
        stop.set()
    r = api.client.get("/api/v1/forecast")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["open_reports"], doc["hours"], doc["replications"]) == (5, 6.0, 2)
    assert "reports" not in doc  # aggregates only: no report is served


def test_forecast_of_all_jakarta_from_a_live_backlog(
    real_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from twin.city.assembly import load_city
    from twin.model.scenario import load_scenario
    from twin_cli.backlog import seed_backlog
    from twin_cli.live import DEFAULT_SCENARIO

    url = f"sqlite:///{tmp_path / 'intake.db'}"
    as_of = pd.Timestamp("2024-03-05 14:00", tz="Asia/Jakarta").tz_convert("UTC")
    scenario = load_scenario(DEFAULT_SCENARIO)
    city = load_city(real_data_dir, speeds=scenario.city.speed_settings())
    seed_backlog(url, city, scenario, open_reports=1000, as_of=as_of)
    out = tmp_path / "fc"
    args = ["forecast", "--database-url", url, "--as-of", as_of.isoformat(), "--hours", "24",
            "--replications", "2", "--workers", "1", "--data", str(real_data_dir),
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    doc = json.loads((out / "forecast.json").read_text())
    assert doc["open_reports"] == 1000
    assert doc["backlog_by_hour"][0]["backlog_mean"] == 1000
    kel = pd.read_csv(out / "kelurahan.csv")
    assert len(kel) == 267
    assert kel["open_now"].sum() == 1000
    assert kel["p_any_breach_6h"].between(0, 1).all()
    # the open reports already past their 6 hours: those still waiting for the desk
    engine = make_engine(url)
    with engine.connect() as conn:
        waiting = conn.execute(
            sa.text("SELECT created_at FROM reports WHERE status = 'menunggu'")
        ).scalars()
        late = sum(as_of - pd.Timestamp(t, tz="UTC") > pd.Timedelta(hours=6) for t in waiting)
    engine.dispose()
    assert doc["open_reports_breached_already"]["coordination_6h"] == late > 0
