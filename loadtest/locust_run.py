"""Locust in subprocesses: its command lines (`locust_commands`: one local process, or a master
and its workers) and one bounded run (`run_locust`) during which the API is SIGKILLed and
restarted on cue; what happened is a `RunRecord`.

Nothing here imports Locust: it runs `loadtest.locustfile` in processes of its own.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from loadtest.options import PACKAGE_DIR, PROJECT_ROOT
from loadtest.profiles import SPAWN_RATE
from loadtest.server import Server

log = logging.getLogger("twin.loadtest")

LOCUSTFILE = PACKAGE_DIR / "locustfile.py"
LOCUST_CONF = PACKAGE_DIR / "locust.conf"


@dataclass(slots=True)
class Kill:
    """One SIGKILL of the API: seconds into the run, and how long until it answered again."""

    at_s: float
    down_s: float


@dataclass(slots=True)
class RunRecord:
    """What happened while Locust ran."""

    started: float  # time.time() at Locust's test start
    kills: list[Kill] = field(default_factory=list)
    locust_exit: int | None = None
    timed_out: bool = False


def locust_commands(
    *, host: str, run_dir: Path, users: int, duration_s: float, workers: int, master_port: int
) -> list[list[str]]:
    """The Locust command lines: one local process, or the master followed by its workers."""
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--config", str(LOCUST_CONF)]
    base += ["--host", host]
    run = [
        "--headless",
        "-u",
        str(users),
        "-r",
        str(int(SPAWN_RATE)),
        "-t",
        f"{math.ceil(duration_s)}s",
    ]
    run += ["--csv", str(run_dir / "locust"), "--csv-full-history", "--html", str(run_dir / "locust.html")]  # fmt: skip
    if workers <= 0:
        return [base + run]
    master = base + run + ["--master", "--master-bind-host", "127.0.0.1"]
    master += ["--master-bind-port", str(master_port), "--expect-workers", str(workers)]
    master += ["--expect-workers-max-wait", "60"]
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
    return [master, *([worker] * workers)]


def run_locust(
    commands: list[list[str]], *, run_dir: Path, env: dict[str, str], duration_s: float,
    server: Server | None, kills: int,
) -> RunRecord:  # fmt: skip
    """Run Locust to its end (bounded: the run time plus a minute), killing the server on cue."""
    marker = run_dir / "test_start"
    marker.unlink(missing_ok=True)
    logs: list[IO[bytes]] = []
    procs: list[subprocess.Popen[bytes]] = []
    launched = time.time()
    try:
        for i, command in enumerate(commands):
            name = "locust.log" if i == 0 else f"locust-worker-{i}.log"
            logs.append((run_dir / name).open("wb"))
            procs.append(
                subprocess.Popen(
                    command, stdout=logs[-1], stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT
                )
            )
        deadline = time.monotonic() + duration_s + 60 + (60 if len(commands) > 1 else 0)
        while not marker.exists() and procs[0].poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        started = float(marker.read_text()) if marker.exists() else launched
        record = RunRecord(started=started)
        for k in range(1, kills + 1):
            at = started + duration_s * k / (kills + 1)
            while time.time() < at and procs[0].poll() is None:
                time.sleep(0.05)
            if procs[0].poll() is not None or server is None:
                break
            server.kill()
            down_at = time.time()
            log.warning("API killed with SIGKILL at %.1f s; restarting", down_at - started)
            server.start()
            record.kills.append(Kill(at_s=down_at - started, down_s=time.time() - down_at))
        for proc in procs:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                record.timed_out = True
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        record.locust_exit = procs[0].returncode
        return record
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for f in logs:
            f.close()
