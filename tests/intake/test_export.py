"""Bulk export: shared columns, no PII, rounded coordinates, scope, bad ranges, flat memory."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from intake.db import make_engine
from intake.store import BLANK_REPORT
from tests.intake.conftest import KEL_A, KEL_B, POINT_A, POINT_B, Api, sqlite_with_key
from tests.intake.test_officers import claim, coordinator_post, jpeg_with_gps, new_officer
from twin.entities import RECORD_COLUMNS
from twin_cli.main import main

PII = {"name": "Siti Rahayu", "email": "siti.rahayu@example.org", "phone": "+62 812 5550 1234"}
TODAY = datetime.now(UTC).date()
RANGE = {"since": str(TODAY - timedelta(days=1)), "until": str(TODAY)}


def post(api: Api, point: dict[str, float], **extra: object) -> str:
    body = {"category": "garbage", **point, "description": "dekat rumah Siti", **extra}
    r = api.client.post("/api/v1/reports", json=body, headers=api.headers())
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def seeded(api: Api) -> tuple[str, str]:
    """A worked report of KEL_A (with the reporter's contact) and an open one of KEL_B."""
    done = post(api, {"lat": -6.1953217, "lon": 106.8051234}, reporter=PII)
    assert coordinator_post(api, done, "coordinate", api.coordinator).status_code == 200
    assert claim(api, done, api.officer).status_code == 200
    r = api.client.post(
        f"/api/v1/officer/reports/{done}/resolve",
        files={"photo": ("p.jpg", jpeg_with_gps(), "image/jpeg")},
        headers=api.bearer(api.officer),
    )
    assert r.status_code == 200, r.text
    return done, post(api, POINT_B)


def export(api: Api, token: str, **params: str) -> bytes:
    r = api.client.get("/api/v1/export", params={**RANGE, **params}, headers=api.bearer(token))
    assert r.status_code == 200, r.text
    return r.content


def test_export_columns_timestamps_and_privacy(api: Api) -> None:
    done, _ = seeded(api)
    admin = new_officer(api, kelurahan_code="*", role="admin")
    frame = pd.read_parquet(io.BytesIO(export(api, admin, format="parquet")))
    assert list(frame.columns) == [*RECORD_COLUMNS, "status"]
    assert len(frame) == 2
    row = frame.set_index("report_id").loc[int(done)]
    assert row["kelurahan_code"] == KEL_A
    assert row["outcome"] == "ppsu"
    assert row["status"] == "selesai"
    assert (row["lat"], row["lon"]) == (-6.195, 106.805)  # rounded to 3 places
    order = ["received_at", "coordinated_at", "assigned_at", "closed_at"]
    stamps = [row[c] for c in order]
    assert all(pd.notna(s) for s in stamps)
    assert stamps == sorted(stamps)
    assert pd.isna(row["arrived_at"])
    text = export(api, admin, format="csv").decode()
    assert text.splitlines()[0] == ",".join(f'"{c}"' for c in [*RECORD_COLUMNS, "status"])
    assert len(text.splitlines()) == 3
    for secret in [*PII.values(), "Siti", "dekat rumah", ".1953217"]:
        assert secret not in text


def test_export_is_scoped_by_token(api: Api) -> None:
    seeded(api)
    mine = pd.read_csv(io.BytesIO(export(api, api.officer)))
    assert set(mine["kelurahan_code"]) == {KEL_A}
    theirs = pd.read_csv(io.BytesIO(export(api, api.officer_b)))
    assert set(theirs["kelurahan_code"]) == {KEL_B}
    r = api.client.get("/api/v1/export", params=RANGE)
    assert r.status_code == 401
    r = api.client.get("/api/v1/export", params=RANGE, headers=api.bearer("off_forged"))
    assert r.status_code == 401
    assert "report" not in r.text


@pytest.mark.parametrize(
    ("since", "until", "status", "words"),
    [
        ("2026-03-01", "2026-02-01", 400, "before since"),
        ("2025-01-01", "2026-01-02", 400, "more than a year"),
        ("yesterday", "2026-01-01", 422, "since"),
        ("2026-02-30", "2026-03-01", 422, "since"),
    ],
)
def test_bad_ranges_are_one_line(api: Api, since: str, until: str, status: int, words: str) -> None:
    r = api.client.get(
        "/api/v1/export", params={"since": since, "until": until}, headers=api.bearer(api.officer)
    )
    assert r.status_code == status
    assert words in r.json()["detail"]
    assert "\n" not in r.json()["detail"]


def test_cli_export_and_bad_range(
    tmp_path: Path, synthetic_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = sqlite_with_key(tmp_path / "x.db")
    rows = fill(url, 500)
    out = tmp_path / "real.parquet"
    args = ["--database-url", url, "--data", str(synthetic_dir)]
    assert main(["export", *args, "--since", "2026-01-01", "--until", "2026-12-31", "--out", str(out)]) == 0  # fmt: skip
    frame = pd.read_parquet(out)
    assert len(frame) == rows
    assert list(frame.columns)[: len(RECORD_COLUMNS)] == list(RECORD_COLUMNS)
    bad = tmp_path / "bad.csv"
    code = main(["export", *args, "--since", "2026-05-01", "--until", "2026-04-01", "--out", str(bad)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "before since" in err
    assert not bad.exists()
    assert not list(tmp_path.glob("*.partial"))


def fill(url: str, n: int) -> int:
    """`n` reports received through 2026 in KEL_A, straight into the database."""
    engine = make_engine(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        columns = ["id", *BLANK_REPORT]
        placeholders = ", ".join("?" * len(columns))
        stamp = "%Y-%m-%d %H:%M:%S.%f"
        rows = []
        for i in range(1, n + 1):
            at = (start + timedelta(seconds=i * 30)).strftime(stamp)
            values = {
                **BLANK_REPORT,
                "token": f"{i:032x}",
                "service_code": "garbage",
                "description": "x" * 200,
                "lat": POINT_A["lat"],
                "lon": POINT_A["lon"],
                "kelurahan_code": KEL_A,
                "channel": "jaki",
                "status": "menunggu",
                "reporter_name": PII["name"],
                "created_at": at,
                "updated_at": at,
            }
            rows.append((i, *(values[c] for c in BLANK_REPORT)))
        conn.exec_driver_sql(f"INSERT INTO reports ({', '.join(columns)}) VALUES ({placeholders})", rows)  # fmt: skip
    engine.dispose()
    return n


SAMPLE_RSS = """
import sys, psutil, intake.export as export
from twin_cli.main import main
encode, samples = export.encode, []
def sampled(batches, fmt):
    for chunk in encode(batches, fmt):
        samples.append(psutil.Process().memory_info().rss / 2**20)
        yield chunk
export.encode = sampled
code = main(sys.argv[1:])
print(" ".join(f"{s:.1f}" for s in samples))
sys.exit(code)
"""


def rss_while_exporting(url: str, data: Path, out: Path) -> list[float]:
    """RSS (MB) of a `twin export` process after each chunk it wrote to `out`."""
    args = ["--since", "2026-01-01", "--until", "2026-12-31", "--out", str(out)]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SAMPLE_RSS,
            "export",
            "--database-url",
            url,
            "--data",
            str(data),
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(v) for v in done.stdout.split()]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_memory_is_flat(tmp_path: Path, synthetic_dir: Path, fmt: str) -> None:
    """200,000 rows in 10 batches: memory after the last is that after the second."""
    url, _ = sqlite_with_key(tmp_path / "big.db")
    fill(url, 200_000)
    out = tmp_path / f"big.{fmt}"
    rss = rss_while_exporting(url, synthetic_dir, out)
    written = pd.read_parquet(out) if fmt == "parquet" else pd.read_csv(out)
    assert len(written) == 200_000
    assert len(rss) >= 10  # written as it goes, a batch at a time
    # 160,000 more rows held as Python objects would take over 100 MB
    assert max(rss) - rss[1] < 20, rss


def test_the_doc_compares_simulated_and_real_with_one_code(
    api: Api, synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/records.md's code reads a twin run and an export alike."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    scenario = tmp_path / "tiny.toml"
    scenario.write_text("[run]\ndays = 2\n[demand]\nreports_per_day = 30.0\n")
    run = tmp_path / "run"
    args = ["run", str(scenario), "--data", str(synthetic_dir), "--out", str(run), "--quiet"]
    assert main(args) == 0
    seeded(api)
    admin = new_officer(api, kelurahan_code="*", role="admin")
    real = tmp_path / "real.parquet"
    real.write_bytes(export(api, admin, format="parquet"))
    doc = (Path(__file__).parents[2] / "docs" / "records.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/records.md", "exec"), namespace)
    table = namespace["compare"](run / "reports.parquet", real)  # type: ignore[operator]
    assert table.loc["reports", "real"] == 2
    assert table.loc["resolved", "real"] == 1
    assert table.loc["reports", "simulated"] > 30
