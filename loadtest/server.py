"""The intake API a load test runs against, and what it needs before the first request.

`Server` runs ``twin serve`` on a loopback port in a process group of its own (started, SIGKILLed
and restarted on cue); `migrate_database`, `issue_credentials` (channel keys and officer tokens
through the admin commands ``twin keys add`` and ``twin officers add``, as an operator would) and
`warm_up` prepare it; `fresh_postgres_schema` and `drop_postgres_schema` give a PostgreSQL run a
schema of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest.options import PROJECT_ROOT
from loadtest.profiles import SERVER_RATES
from twin.errors import TwinError

PG_PREFIXES = ("postgresql://", "postgresql+psycopg://", "postgres://")


def _tail(path: Path, chars: int = 800) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:].strip()
    except OSError:
        return ""


class Server:
    """``twin serve`` on a loopback port, in a process group of its own (to SIGKILL it whole).

    Parameters
    ----------
    database_url, data_dir, workers
        As for ``twin serve``.
    port
        The port, kept across restarts.
    log_path
        Where the server's output goes (appended across restarts).
    media_dir
        Where proof photos are stored.
    """

    def __init__(
        self, database_url: str, *, port: int, data_dir: str | None, workers: int,
        log_path: Path, media_dir: Path,
    ) -> None:  # fmt: skip
        self.database_url = database_url
        self.port = port
        self.data_dir = data_dir
        self.workers = workers
        self.log_path = log_path
        self.media_dir = media_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until ``/health`` answers."""
        self.launch()
        self.wait_up()

    def launch(self) -> None:
        """Start the server process (without waiting for it)."""
        from intake.bench import twin_command

        args = ["serve", "--port", str(self.port), "--database-url", self.database_url]
        args += ["--workers", str(self.workers)]
        if self.data_dir:
            args += ["--data", self.data_dir]
        env = {**os.environ, **SERVER_RATES, "INTAKE_MEDIA_DIR": str(self.media_dir)}
        with self.log_path.open("ab") as logfile:
            self.proc = subprocess.Popen(
                twin_command(*args), stdout=logfile, stderr=logfile, env=env,
                start_new_session=True, cwd=PROJECT_ROOT,
            )  # fmt: skip

    def wait_up(self) -> None:
        """Wait until ``/health`` answers (TwinError with the log's end if the server died)."""
        from intake.bench import wait_until_up

        assert self.proc is not None
        try:
            wait_until_up(self.port, self.proc)
        except RuntimeError as exc:
            self.stop()
            raise TwinError(f"{exc}; server log: {_tail(self.log_path)}") from None

    def kill(self) -> None:
        """SIGKILL the server and every process it started."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM), forcibly after 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def migrate_database(database_url: str) -> None:
    """Create or migrate the schema, as ``twin serve`` would on start."""
    from intake.db import make_engine, migrate

    engine = make_engine(database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()


def warm_up(host: str, api_key: str) -> None:
    """One report outside Jakarta (refused with 422, nothing stored): the API's first located
    report builds its spatial index (about 1.3 s), which would otherwise count as latency."""
    import urllib.request

    body = json.dumps({"category": "other", "lat": -7.5, "lon": 110.4, "description": "warm-up"})
    request = urllib.request.Request(
        f"{host}/api/v1/reports", data=body.encode(), method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": api_key},
    )  # fmt: skip
    with contextlib.suppress(OSError):  # 422 (HTTPError is an OSError) is the expected answer
        urllib.request.urlopen(request, timeout=30).close()


def _admin(args: Sequence[str]) -> subprocess.Popen[str]:
    from intake.bench import twin_command

    return subprocess.Popen(
        twin_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=PROJECT_ROOT,
    )  # fmt: skip


def _secret(proc: subprocess.Popen[str], what: str) -> str:
    out, err = proc.communicate(timeout=120)
    if proc.returncode != 0 or not out.strip():
        raise TwinError(f"{what} failed: {err.strip()[-300:]}")
    return out.strip().splitlines()[-1]


def issue_credentials(
    database_url: str, *, officer_kelurahan: Sequence[str], data_dir: str | None
) -> dict[str, Any]:
    """Channel keys (``jaki``, ``qlue``) and one officer per kelurahan, by the admin commands.

    The commands run side by side: the database must be migrated already (`migrate_database`).
    """
    jaki = _admin(["keys", "add", "--channel", "jaki", "--database-url", database_url])
    qlue = _admin(["keys", "add", "--channel", "qlue", "--database-url", database_url])
    data = ["--data", data_dir] if data_dir else []
    officers = [
        (code, _admin(["officers", "add", "--kelurahan", code, "--role", "officer",
                       "--database-url", database_url, *data]))
        for code in officer_kelurahan
    ]  # fmt: skip
    return {
        "api_key": _secret(jaki, "keys add"),
        "open311_key": _secret(qlue, "keys add"),
        "officers": [
            {"kelurahan": code, "token": _secret(proc, "officers add")} for code, proc in officers
        ],
    }


def fresh_postgres_schema(url: str, name: str) -> str:
    """Create schema `name` in the PostgreSQL database of `url`; the URL that uses it."""
    _execute(url, f'CREATE SCHEMA "{name}"')
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}"


def drop_postgres_schema(url: str, name: str) -> None:
    """Drop schema `name` (and only it) with everything in it."""
    _execute(url, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _execute(url: str, statement: str) -> None:
    """Run one SQL statement in its own transaction."""
    import sqlalchemy as sa

    from intake.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()
