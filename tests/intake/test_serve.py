"""The real service: `twin serve`, the admin commands, and durability under SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from intake.bench import count_stored, issue_key, post_reports, running_server, twin_command
from tests.intake.conftest import KEL_A, POINT_A
from twin_cli.main import main


def test_admin_commands_print_secrets_and_refuse_bad_input(
    tmp_path: Path, synthetic_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'admin.db'}"
    assert main(["keys", "add", "--channel", "qlue", "--database-url", url]) == 0
    assert capsys.readouterr().out.strip().startswith("key_")
    assert (
        main(
            [
                "officers",
                "add",
                "--kelurahan",
                KEL_A,
                "--role",
                "coordinator",
                "--database-url",
                url,
                "--data",
                str(synthetic_dir),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip().startswith("off_")
    assert main(["keys", "add", "--channel", "pigeon", "--database-url", url]) == 2
    assert "unknown channel" in capsys.readouterr().err
    assert (
        main(
            [
                "officers",
                "add",
                "--kelurahan",
                "99.99",
                "--database-url",
                url,
                "--data",
                str(synthetic_dir),
            ]
        )
        == 2
    )
    assert "no such kelurahan" in capsys.readouterr().err


def test_serve_refuses_an_unreachable_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--database-url", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("twin: error: database")
    assert "Traceback" not in err


def test_acknowledged_reports_survive_sigkill(tmp_path: Path, synthetic_dir: Path) -> None:
    """Every report answered 201 is on disk after the server is killed with SIGKILL."""
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    key = issue_key(url)
    body = f'{{"category": "garbage", "lat": {POINT_A["lat"]}, "lon": {POINT_A["lon"]}}}'.encode()
    with running_server(url, data_dir=str(synthetic_dir)) as (base, proc):
        _, statuses, acked, _ = asyncio.run(post_reports(base, key, [body] * 300, concurrency=16))
        os.kill(proc.pid, signal.SIGKILL)  # right after the last acknowledgement
        proc.wait(timeout=10)
    assert statuses.count(201) == 300
    assert count_stored(url, acked) == len(acked) == 300
    with running_server(url, data_dir=str(synthetic_dir)) as (base, _):  # and it restarts cleanly
        _, statuses, acked2, _ = asyncio.run(post_reports(base, key, [body] * 10, concurrency=2))
    assert statuses.count(201) == 10
    assert count_stored(url, acked + acked2) == 310


def test_serve_help_lists_its_options() -> None:
    out = subprocess.run(
        twin_command("serve", "--help"), capture_output=True, text=True, check=True
    ).stdout
    for option in ("--host", "--port", "--database-url", "--workers"):
        assert option in out


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_serve_refuses_a_bad_setting(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INTAKE_KPI_CACHE_SECONDS", value)
    assert main(["serve", "--database-url", "sqlite:///:memory:"]) == 2
    err = capsys.readouterr().err
    assert f"INTAKE_KPI_CACHE_SECONDS='{value}': expected a number of seconds >= 0" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("INTAKE_RATE_REPORTS_KEY", "lots", "expected a rate such as 30/minute, or off"),
        ("INTAKE_RATE_FAILED_AUTH", "3 a day", "expected a rate such as 30/minute, or off"),
        ("INTAKE_PUBLIC_URL", "lapor.jakarta.go.id", "expected an http(s) URL"),
        ("INTAKE_PHOTO_JOBS", "0", "expected a whole number >= 1"),
    ],
)
def test_serve_refuses_a_bad_limit_or_address(
    variable: str,
    value: str,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["serve", "--database-url", "sqlite:///:memory:"]) == 2
    err = capsys.readouterr().err
    assert f"{variable}='{value}': {expected}" in err
    assert "Traceback" not in err


def test_a_crash_between_commit_and_answer_is_healed_by_the_idempotency_key(
    tmp_path: Path, synthetic_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hard path of the crash oracle: the report is committed, the client never hears.

    Its retry with the same Idempotency-Key after the restart must get that very report back
    (a replay), and the table must hold it once.
    """
    import httpx2 as httpx

    url = f"sqlite:///{tmp_path / 'crash.db'}"
    key = issue_key(url)
    report = {"category": "trees", "description": "fallen tree", **POINT_A}
    headers = {"X-API-Key": key, "Idempotency-Key": "citizen-42-report-1"}
    monkeypatch.setenv("INTAKE_FAULT_CRASH_AFTER_COMMITS", "1")
    with running_server(url, data_dir=str(synthetic_dir)) as (base, proc):
        with pytest.raises(httpx.TransportError):  # no answer: the server died after committing
            httpx.post(f"{base}/api/v1/reports", json=report, headers=headers, timeout=10)
        assert proc.wait(timeout=10) == 70
    monkeypatch.delenv("INTAKE_FAULT_CRASH_AFTER_COMMITS")
    with running_server(url, data_dir=str(synthetic_dir)) as (base, _):
        retry = httpx.post(f"{base}/api/v1/reports", json=report, headers=headers, timeout=10)
        other = httpx.post(
            f"{base}/api/v1/reports", json={**report, "description": "another"}, headers=headers
        )
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json()["kelurahan_code"] == KEL_A
    assert other.status_code == 422  # the same key with another body
    assert count_stored(url, [retry.json()["id"]]) == 1
    import sqlalchemy as sa

    from intake.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM reports")).scalar() == 1
    engine.dispose()


def test_serve_refuses_a_bad_fault_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INTAKE_FAULT_CRASH_AFTER_COMMITS", "0")
    assert main(["serve", "--database-url", "sqlite:///:memory:"]) == 2
    assert "expected a whole number >= 1" in capsys.readouterr().err


def test_two_worker_processes_share_one_sqlite_file(tmp_path: Path, synthetic_dir: Path) -> None:
    """Each worker's group commit picks its own ids under SQLite's write lock: none collide."""
    url = f"sqlite:///{tmp_path / 'two.db'}"
    key = issue_key(url)
    bodies = [
        f'{{"category": "garbage", "lat": {POINT_A["lat"]}, "lon": {POINT_A["lon"]}, '
        f'"description": "r{i}"}}'.encode()
        for i in range(400)
    ]
    with running_server(url, data_dir=str(synthetic_dir), workers=2) as (base, _):
        _, statuses, acked, _ = asyncio.run(post_reports(base, key, bodies, concurrency=16))
    assert statuses.count(201) == 400
    assert len(set(acked)) == 400
    assert count_stored(url, acked) == 400
