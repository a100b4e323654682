"""Fixtures for the intake API: an app on SQLite and on PostgreSQL, keys and officers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from intake.config import Settings
from intake.db import make_engine, metadata, migrate, schema_version
from intake.main import create_app
from intake.store import create_api_key, create_officer

PG_SERVER = os.environ.get("INTAKE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
# one schema per test process, so parallel test runs never drop each other's tables
PG_SCHEMA = f"intake_test_{os.getpid()}"
PG_URL = f"{PG_SERVER}?options=-csearch_path%3D{PG_SCHEMA}"


# the rate limits count high here: these tests send hundreds of reports and failed logins a
# second from one address; test_rate_limits sets its own limits and checks the defaults
TEST_RATES = {
    "INTAKE_RATE_FAILED_AUTH": "100000/second",
    "INTAKE_RATE_REPORTS_KEY": "100000/second",
    "INTAKE_RATE_REPORTS_ADDRESS": "100000/second",
}
os.environ.update(TEST_RATES)  # also for the servers the tests start as subprocesses


def sqlite_with_key(db: Path) -> tuple[str, str]:
    """A migrated SQLite database at `db` with one channel key: (URL, key)."""
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        key = create_api_key(conn, channel="jaki")
    engine.dispose()
    return url, key


def _postgres_available() -> str | None:
    try:
        engine = sa.create_engine(
            PG_URL.replace("postgresql://", "postgresql+psycopg://"),
            connect_args={"connect_timeout": 3},
        )
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # the server may simply not be there on a user's machine
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


def reset_postgres() -> None:
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}"))
        metadata.drop_all(conn)
        schema_version.drop(conn, checkfirst=True)
    engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def _drop_test_schema() -> Iterator[None]:
    yield
    if _postgres_available() is None:
        engine = make_engine(PG_SERVER)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'intake.db'}"
    reason = _postgres_available()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI: {reason}")
        pytest.skip(f"PostgreSQL at {PG_URL} not reachable ({reason})")
    reset_postgres()
    return PG_URL


@dataclass
class Api:
    """A test client with credentials of every kind."""

    client: TestClient
    key: str
    settings: Settings
    officer: str  # officer of KEL_A
    coordinator: str  # coordinator of KEL_A
    officer_b: str  # officer of KEL_B

    def headers(self, **extra: str) -> dict[str, str]:
        return {"X-API-Key": self.key, **extra}

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


KEL_A = "31.71.01.1001"  # synthetic city: the south-west square
KEL_B = "31.71.02.1002"
POINT_A = {"lat": -6.195, "lon": 106.805}
POINT_B = {"lat": -6.185, "lon": 106.815}


@pytest.fixture
def api(database_url: str, synthetic_dir: Path, tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        database_url=database_url,
        data_dir=str(synthetic_dir),
        media_dir=tmp_path / "media",
        kpi_cache_seconds=0,  # tests read KPIs right after changing reports
    )
    engine = make_engine(database_url)
    migrate(engine)
    with engine.begin() as conn:
        key = create_api_key(conn, channel="jaki")
        _, officer = create_officer(conn, kelurahan_code=KEL_A, role="officer")
        _, coordinator = create_officer(conn, kelurahan_code=KEL_A, role="coordinator")
        _, officer_b = create_officer(conn, kelurahan_code=KEL_B, role="officer")
    engine.dispose()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, key, settings, officer, coordinator, officer_b)
