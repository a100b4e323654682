"""`twin loadtest`: prepare a run, start the intake API, run Locust, kill and restart the API on
demand, audit the database, and write the run folder.

The steps of one run (`run_loadtest`):

1. A payload pool drawn from the twin's demand model with the seed (`loadtest.payloads`), written
   to the run folder ``reports_out/loadtest-<profile>-<time>/`` with ``run.json``.
2. A fresh database (SQLite in a temporary folder; for PostgreSQL a schema of its own, dropped at
   the end), two channel keys (``jaki`` for the native API, ``qlue`` for Open311) and officers of
   the busiest kelurahan, all through the admin commands ``twin keys add`` and
   ``twin officers add``, as an operator would.
3. ``twin serve`` on a free loopback port, then Locust as a subprocess (``--headless``, one
   process, or one master and ``--workers`` workers), with the profile's shape. With ``--kill N``
   the API is killed with SIGKILL N times, evenly over the run, and restarted on the same port.
4. The audit (`audit`), a Jepsen-style set check of the client's ledger against the database:
   every report acknowledged with 201 is stored exactly once, with what was sent, in the
   kelurahan the city model puts its point in.
5. ``summary.json``, ``loadtest.png`` (requests/s, latency percentiles, users over time) beside
   Locust's CSV files and HTML report, and the exit code: 0 only when the profile's thresholds
   hold and the audit is clean.

Nothing here imports Locust: Locust (and its gevent monkey-patching) lives only in the
subprocesses running `loadtest.locustfile`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from loadtest.profiles import PROFILES, SERVER_RATES, SPAWN_RATE, Profile
from twin.errors import TwinError

log = logging.getLogger("twin.loadtest")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = PROJECT_ROOT / "loadtest" / "locustfile.py"
LOCUST_CONF = PROJECT_ROOT / "loadtest" / "locust.conf"
DEFAULT_SCENARIO = PROJECT_ROOT / "scenarios" / "jakarta-2016.toml"
CREDENTIALS_FILE = "credentials.json"
TAG = re.compile(r"\[lt ([A-Za-z0-9-]+)\]$")
OUTAGE_ERROR = "connection error"  # failures of requests that got no HTTP answer
PG_PREFIXES = ("postgresql://", "postgresql+psycopg://", "postgres://")


@dataclass(slots=True)
class LoadTestOptions:
    """Everything `twin loadtest` was asked for.

    Attributes
    ----------
    profile
        ``smoke``, ``typical-day``, ``flood-surge`` or ``ramp`` (`loadtest.profiles.PROFILES`).
    duration_s, users
        Run length and peak users; None: the profile's.
    host
        Base URL of an intake API already running; None: start one on loopback.
    database_url
        The API's database. Without `host`: the database of the API started here (PostgreSQL:
        a fresh schema inside it, dropped afterwards; SQLite: that file). With `host`: where
        credentials are issued and the audit looks (required).
    kills
        SIGKILLs of the API during the run (each followed by a restart).
    workers
        Locust worker processes (0: a single local process).
    seed
        Payload seed; None: the scenario's ``run.seed``.
    out
        Run folder; None: ``reports_out/loadtest-<profile>-<time>``.
    data_dir
        Jakarta data directory (``--data``).
    scenario
        The scenario whose demand drives the load.
    server_workers
        Worker processes of the API started here.
    idempotency
        False only for the negative control: reports are sent without idempotency keys.
    client_timeout_s
        Seconds before a client gives a request up (and retries a report).
    officers
        Officer tokens to issue (one kelurahan each); None: 2 for ``smoke``, else 4.
    """

    profile: str
    duration_s: float | None = None
    users: int | None = None
    host: str | None = None
    database_url: str | None = None
    kills: int = 0
    workers: int = 0
    seed: int | None = None
    out: Path | None = None
    data_dir: str | None = None
    scenario: Path = DEFAULT_SCENARIO
    server_workers: int = 1
    idempotency: bool = True
    client_timeout_s: float = 10.0
    officers: int | None = None


@dataclass(slots=True)
class StoredRow:
    """A stored report of this run, as the audit needs it."""

    id: int
    key: str | None
    lat: float
    lon: float
    kelurahan_code: str
    category: str


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


# --- the audit ---------------------------------------------------------------------------------


def read_ledger(folder: Path) -> list[dict[str, Any]]:
    """Every record of every ledger file of a run (a torn last line is skipped)."""
    records: list[dict[str, Any]] = []
    for path in sorted(folder.glob("ledger-*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("%s: skipped a torn line", path.name)
    return records


def read_stored(database_url: str, run_tag: str) -> list[StoredRow]:
    """The reports of this run in the database: those whose description carries its tag."""
    import sqlalchemy as sa

    from intake.db import make_engine, reports

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    reports.c.id,
                    reports.c.description,
                    reports.c.lat,
                    reports.c.lon,
                    reports.c.kelurahan_code,
                    reports.c.service_code,
                ).where(reports.c.description.like(f"%[lt {run_tag}-%"))
            ).all()
    finally:
        engine.dispose()
    out = []
    for row in rows:
        match = TAG.search(str(row.description))
        out.append(
            StoredRow(
                id=int(row.id),
                key=match.group(1) if match else None,
                lat=float(row.lat),
                lon=float(row.lon),
                kelurahan_code=str(row.kelurahan_code),
                category=str(row.service_code),
            )
        )
    return out


def audit(
    ledger: Iterable[dict[str, Any]],
    stored: Sequence[StoredRow],
    payloads: Sequence[dict[str, Any]],
    relocate: Callable[[Sequence[float], Sequence[float]], list[str | None]],
    *,
    examples: int = 5,
) -> dict[str, Any]:
    """Check the database against what the clients sent and were told.

    A Jepsen "set" check: a report acknowledged with 201 but missing is **lost**; a report
    stored more than once is **duplicated**; a stored report no client ever sent is
    **unexpected**; a report sent, never acknowledged (the run ended, or the answer was lost in
    a kill) may be present or absent. Reports are matched by the key each carries in its
    description, independently of the server's idempotency table. Each stored report must also
    hold the category and point that were sent, and sit in the kelurahan that the city model
    puts that point in (`relocate`) and that the payload was drawn for.

    Parameters
    ----------
    ledger
        Client records: ``{"e": "sent", "k": key, "p": payload number}``,
        ``{"e": "ack", "k": key, "id": report id, "n": attempts, "rp": replayed}``,
        ``{"e": "rej", "k": key, "s": status}``.
    stored
        The run's stored reports (`read_stored`).
    payloads
        The payload pool (``kelurahan``, ``lat``, ``lon``, ``category`` of each).
    relocate
        Kelurahan code (None outside Jakarta) of each point, given longitudes and latitudes.
    examples
        Keys listed per kind of violation.

    Returns
    -------
    result
        Counts (``sent, acknowledged, rejected, stored, lost, duplicates, unexpected,
        wrong_kelurahan, altered, unacknowledged_present, unacknowledged_absent, retried,
        replayed``), ``examples`` of each violation, and ``ok``.
    """
    sent: dict[str, int] = {}
    acks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    rejected: set[str] = set()
    for r in ledger:
        kind, key = r.get("e"), str(r.get("k"))
        if kind == "sent":
            sent[key] = int(r.get("p", -1))
        elif kind == "ack":
            acks[key].append(r)
        elif kind == "rej":
            rejected.add(key)
    by_key: dict[str | None, list[StoredRow]] = defaultdict(list)
    by_id: dict[int, StoredRow] = {}
    for row in stored:
        by_key[row.key].append(row)
        by_id[row.id] = row

    def holds(report_id: Any, key: str) -> bool:
        """Whether the acknowledged id is stored, as the report of this key."""
        try:
            found = by_id.get(int(report_id))
        except (TypeError, ValueError):
            return False
        return found is not None and found.key == key

    lost = [
        key for key, records in acks.items() if not all(holds(r.get("id"), key) for r in records)
    ]
    duplicates = {k: len(v) for k, v in by_key.items() if k is not None and len(v) > 1}
    unexpected = [row.id for row in stored if row.key is None or row.key not in sent]

    located = relocate([row.lon for row in stored], [row.lat for row in stored]) if stored else []
    wrong, altered = [], []
    for row, where in zip(stored, located, strict=True):
        number = sent.get(row.key or "", -1)
        payload = payloads[number] if 0 <= number < len(payloads) else None
        if where != row.kelurahan_code or (payload and payload["kelurahan"] != row.kelurahan_code):
            wrong.append(row.id)
        if payload and (
            abs(payload["lat"] - row.lat) > 1e-9
            or abs(payload["lon"] - row.lon) > 1e-9
            or payload["category"] != row.category
        ):
            altered.append(row.id)

    unacked = set(sent) - set(acks)
    present = sum(1 for k in unacked if k in by_key)
    ack_records = [r for records in acks.values() for r in records]
    result: dict[str, Any] = {
        "sent": len(sent),
        "acknowledged": len(acks),
        "rejected": len(rejected),
        "stored": len(stored),
        "lost": len(lost),
        "duplicates": sum(n - 1 for n in duplicates.values()),
        "unexpected": len(unexpected),
        "wrong_kelurahan": len(wrong),
        "altered": len(altered),
        "unacknowledged_present": present,
        "unacknowledged_absent": len(unacked) - present,
        "retried": sum(1 for r in ack_records if int(r.get("n", 1)) > 1),
        "replayed": sum(1 for r in ack_records if r.get("rp")),
        "examples": {
            "lost": sorted(lost)[:examples],
            "duplicated": sorted(duplicates)[:examples],
            "unexpected_ids": unexpected[:examples],
            "wrong_kelurahan_ids": wrong[:examples],
            "altered_ids": altered[:examples],
        },
    }
    result["ok"] = not any(
        result[k] for k in ("lost", "duplicates", "unexpected", "wrong_kelurahan", "altered")
    )
    return result


# --- Locust's files ----------------------------------------------------------------------------


def _number(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def locust_stats(prefix: Path) -> dict[str, Any]:
    """Requests, rates, percentiles and failures from Locust's ``<prefix>_stats.csv`` and
    ``<prefix>_failures.csv``.

    Returns
    -------
    stats
        ``requests, failures, rps, p50_ms, p95_ms, p99_ms`` over all endpoints, ``endpoints``
        (the same per ``METHOD name``), and ``errors`` (failure messages with their counts;
        ``outage_failures`` counts those of requests that got no HTTP answer).
    """
    path = Path(f"{prefix}_stats.csv")
    if not path.is_file():
        raise TwinError(f"Locust wrote no statistics ({path.name} is missing): see locust.log")
    endpoints: dict[str, dict[str, Any]] = {}
    total: dict[str, Any] = {}
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            entry = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": round(_number(row["Requests/s"]) or 0.0, 2),
                "p50_ms": _number(row["50%"]),
                "p95_ms": _number(row["95%"]),
                "p99_ms": _number(row["99%"]),
                "max_ms": _number(row["Max Response Time"]),
            }
            if row["Name"] == "Aggregated":
                total = entry
            else:
                endpoints[f"{row['Type']} {row['Name']}"] = entry
    errors: list[dict[str, Any]] = []
    failures_path = Path(f"{prefix}_failures.csv")
    if failures_path.is_file():
        with failures_path.open(encoding="utf-8") as f:
            errors = [
                {
                    "endpoint": f"{row['Method']} {row['Name']}",
                    "error": row["Error"][:300],
                    "count": int(row["Occurrences"]),
                }
                for row in csv.DictReader(f)
            ]
    errors.sort(key=lambda e: -int(e["count"]))
    outage = sum(int(e["count"]) for e in errors if OUTAGE_ERROR in str(e["error"]))
    return {**total, "outage_failures": outage, "endpoints": endpoints, "errors": errors[:20]}


def history(prefix: Path) -> list[dict[str, float | None]]:
    """The aggregated rows of ``<prefix>_stats_history.csv``: one per second of the run."""
    path = Path(f"{prefix}_stats_history.csv")
    if not path.is_file():
        return []
    out = []
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["Name"] != "Aggregated":
                continue
            out.append(
                {
                    "t": _number(row["Timestamp"]),
                    "users": _number(row["User Count"]),
                    "rps": _number(row["Requests/s"]),
                    "fps": _number(row["Failures/s"]),
                    "p50": _number(row["50%"]),
                    "p95": _number(row["95%"]),
                    "p99": _number(row["99%"]),
                    "total": _number(row["Total Request Count"]),
                    "total_failures": _number(row["Total Failure Count"]),
                }
            )
    return out


def plot_run(
    rows: list[dict[str, float | None]],
    out: Path,
    *,
    title: str,
    started: float,
    kills: Sequence[Kill] = (),
    surge: tuple[float, float] | None = None,
    breaking_s: float | None = None,
    day_s: float | None = None,
) -> Path:
    """Requests/s, latency percentiles and users over time, one panel each, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(name: str) -> list[float]:
        return [math.nan if r[name] is None else float(r[name] or 0.0) for r in rows]

    def per_second(name: str) -> list[float]:
        """Rates from Locust's cumulative counts (its own Requests/s is a moving average)."""
        values = series(name)
        rates = [math.nan]
        for i in range(1, len(values)):
            dt = t[i] - t[i - 1]
            rates.append((values[i] - values[i - 1]) / dt if dt > 0 else math.nan)
        return rates

    t = [float(r["t"] or started) - started for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True, constrained_layout=True)
    ax_rps, ax_lat, ax_users = axes
    requests, failures = per_second("total"), per_second("total_failures")
    answered = [r - f for r, f in zip(requests, failures, strict=True)]
    ax_rps.plot(t, requests, label="requests/s", color="tab:blue")
    ax_rps.plot(t, answered, label="successful/s", color="tab:green", linewidth=0.8)
    ax_rps.plot(t, failures, label="failures/s", color="tab:red")
    ax_rps.set_ylabel("per second")
    for name, color in (("p50", "tab:green"), ("p95", "tab:orange"), ("p99", "tab:red")):
        ax_lat.plot(t, series(name), label=name, color=color)
    ax_lat.set_ylabel("response time (ms),\nLocust's 10 s window")
    if any(v > 0 for v in series("p99") if not math.isnan(v)):
        ax_lat.set_yscale("log")
    ax_users.plot(t, series("users"), color="tab:purple", label="users")
    ax_users.set_ylabel("users")
    ax_users.set_xlabel("seconds since the start of the run")
    for ax in axes:
        for i, kill in enumerate(kills):
            ax.axvspan(
                kill.at_s, kill.at_s + kill.down_s, color="red", alpha=0.15,
                label="API killed (SIGKILL) until restarted" if i == 0 else None,
            )  # fmt: skip
        if surge:
            ax.axvspan(*surge, color="tab:cyan", alpha=0.12, label="flood surge")
        if breaking_s is not None:
            ax.axvline(breaking_s, color="black", linestyle="--", label="breaking step starts")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    ax_rps.set_title(title)
    if day_s:  # typical-day: the simulated hour on top
        top = ax_rps.secondary_xaxis(
            "top", functions=(lambda x: x / day_s * 24, lambda h: h * day_s / 24)
        )
        top.set_xlabel("simulated hour of the day")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# --- verdict -----------------------------------------------------------------------------------


def verdict(
    profile: Profile, stats: dict[str, Any], audit_result: dict[str, Any] | None, *, kills: int
) -> list[str]:
    """Why the run failed (empty: it passed): the profile's thresholds and the audit."""
    reasons = []
    if audit_result is not None:
        kinds = ("lost", "duplicates", "unexpected", "wrong_kelurahan", "altered")
        reasons += [f"audit: {k} = {audit_result[k]}" for k in kinds if audit_result[k]]
        if not audit_result["acknowledged"]:
            reasons.append("audit: no report was acknowledged")
    requests = int(stats.get("requests") or 0)
    if requests == 0:
        reasons.append("no request was made")
        return reasons
    if profile.name == "ramp":  # its thresholds define the breaking point, not a failure
        return reasons
    failures = int(stats.get("failures") or 0) - (int(stats["outage_failures"]) if kills else 0)
    ratio = failures / requests
    if ratio > profile.max_failure_ratio:
        reasons.append(
            f"failure ratio {ratio:.2%} > {profile.max_failure_ratio:.0%}"
            + (" (connection errors during kills excluded)" if kills else "")
        )
    p99 = stats.get("p99_ms")
    if p99 is not None and p99 > profile.max_p99_ms:
        reasons.append(f"p99 {p99:.0f} ms > {profile.max_p99_ms:.0f} ms")
    return reasons


# --- processes ---------------------------------------------------------------------------------


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


# --- a whole run -------------------------------------------------------------------------------


def _public_url(url: str) -> str:
    """A database URL without its password."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _officer_kelurahan(meta: dict[str, Any], profile: str, n: int) -> list[str]:
    busiest = list(meta["busiest_kelurahan"])
    if profile == "flood-surge":  # officers where the flood reports go, and where the most go
        flood = list(meta["busiest_flood_kelurahan"])
        busiest = [c for pair in zip(flood, busiest, strict=False) for c in pair]
    return list(dict.fromkeys(busiest))[: max(1, n)]


def _validate(opts: LoadTestOptions) -> Profile:
    if opts.profile not in PROFILES:
        raise TwinError(f"--profile {opts.profile!r}: choose from {', '.join(PROFILES)}")
    if opts.duration_s is not None and opts.duration_s <= 0:
        raise TwinError(f"--duration must be > 0 seconds, got {opts.duration_s}")
    if opts.users is not None and opts.users < 1:
        raise TwinError(f"--users must be >= 1, got {opts.users}")
    if opts.kills < 0 or opts.workers < 0 or opts.server_workers < 1 or (opts.officers or 1) < 1:
        raise TwinError("--kill and --workers must be >= 0, --server-workers >= 1")
    if opts.client_timeout_s <= 0:
        raise TwinError(f"--client-timeout must be > 0, got {opts.client_timeout_s}")
    if opts.host is not None:
        if opts.kills:
            raise TwinError("--kill needs the API started here: leave out --host")
        if not opts.database_url:
            raise TwinError(
                "--host needs --database-url (the API's database) to issue keys and audit"
            )
    return PROFILES[opts.profile]


def run_loadtest(opts: LoadTestOptions) -> tuple[int, dict[str, Any], Path]:
    """Run one load test (see the module docstring).

    Returns
    -------
    exit_code, summary, run_dir
        0 when the thresholds hold and the audit is clean, else 1; the summary written to
        ``summary.json``; the run folder.
    """
    from intake.bench import free_port
    from loadtest.payloads import build_pool, surge_multiplier, write_pool
    from twin.city import load_city
    from twin.scenario import load_scenario

    profile = _validate(opts)
    clock = time.monotonic()
    duration = float(opts.duration_s or profile.duration_s)
    users = int(opts.users or profile.users)
    now = datetime.now()
    run_dir = (
        opts.out or PROJECT_ROOT / "reports_out" / f"loadtest-{profile.name}-{now:%Y%m%d-%H%M%S}"
    )
    if any(run_dir.glob("ledger-*.jsonl")):  # an earlier run's ledgers would join the audit
        raise TwinError(
            f"--out {run_dir}: holds an earlier load test's ledgers; choose a new folder"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    tag = f"lt{now:%Y%m%d%H%M%S}{secrets.token_hex(3)}"

    scenario = load_scenario(opts.scenario)
    seed = scenario.run.seed if opts.seed is None else opts.seed
    city = load_city(opts.data_dir)
    pool, meta = build_pool(city, scenario, seed=seed)
    write_pool(run_dir, pool, meta)
    multiplier = surge_multiplier(scenario)
    log.info("%.1f s: %d payloads from the demand model", time.monotonic() - clock, len(pool))

    tmp = tempfile.TemporaryDirectory(prefix="twin-loadtest-")
    schema: str | None = None
    base_url = opts.database_url
    server: Server | None = None
    try:
        if opts.host:
            database_url = str(base_url)
        elif base_url and base_url.startswith(PG_PREFIXES):
            schema = tag.lower()
            database_url = fresh_postgres_schema(base_url, schema)
        else:
            database_url = base_url or f"sqlite:///{Path(tmp.name) / 'intake.db'}"
        record_json = {
            "profile": profile.name,
            "run_tag": tag,
            "seed": seed,
            "scenario": str(opts.scenario),
            "duration_s": duration,
            "users": users,
            "workers": opts.workers,
            "kills": opts.kills,
            "idempotency": opts.idempotency,
            "client_timeout_s": opts.client_timeout_s,
            "database": _public_url(database_url),
            "host": opts.host,
        }
        (run_dir / "run.json").write_text(json.dumps(record_json, indent=2), encoding="utf-8")
        officers = opts.officers or (2 if profile.name == "smoke" else 4)
        officer_codes = _officer_kelurahan(meta, profile.name, officers)
        if opts.host:
            host = opts.host.rstrip("/")
            credentials = issue_credentials(
                database_url, officer_kelurahan=officer_codes, data_dir=opts.data_dir
            )
        else:
            server = Server(
                database_url, port=free_port(), data_dir=opts.data_dir,
                workers=opts.server_workers, log_path=run_dir / "server.log",
                media_dir=Path(tmp.name) / "media",
            )  # fmt: skip
            migrate_database(database_url)  # once, so that what follows may run side by side
            server.launch()
            credentials = issue_credentials(
                database_url, officer_kelurahan=officer_codes, data_dir=opts.data_dir
            )
            server.wait_up()
            host = server.url
        log.info("%.1f s: API up, credentials issued", time.monotonic() - clock)
        warm_up(host, credentials["api_key"])
        secret_file = run_dir / CREDENTIALS_FILE
        secret_file.touch(mode=0o600)
        secret_file.write_text(json.dumps(credentials), encoding="utf-8")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
            "LOADTEST_RUN_DIR": str(run_dir),
            "LOADTEST_PROFILE": profile.name,
            "LOADTEST_RUN_TAG": tag,
            "LOADTEST_SEED": str(seed),
            "LOADTEST_SCENARIO": str(opts.scenario),
            "LOADTEST_DURATION": str(duration),
            "LOADTEST_SURGE_MULTIPLIER": str(multiplier),
            "LOADTEST_CLIENT_TIMEOUT": str(opts.client_timeout_s),
            "LOADTEST_NO_IDEMPOTENCY": "" if opts.idempotency else "1",
        }  # fmt: skip
        commands = locust_commands(
            host=host, run_dir=run_dir, users=users, duration_s=duration,
            workers=opts.workers, master_port=free_port(),
        )  # fmt: skip
        record = run_locust(
            commands, run_dir=run_dir, env=env, duration_s=duration, server=server,
            kills=opts.kills,
        )  # fmt: skip
        log.info("%.1f s: Locust done", time.monotonic() - clock)
        if server is not None:
            server.stop()

        stats = locust_stats(run_dir / "locust")
        ramp = _read_json(run_dir / "ramp.json")
        stored = read_stored(database_url, tag)

        def relocate(lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
            rows = city.kelurahan.locate_many(list(lons), list(lats))
            codes = city.kelurahan.codes
            return [str(codes[r]) if r >= 0 else None for r in rows]

        ledger = read_ledger(run_dir)
        audit_result = audit(ledger, stored, pool, relocate)
        reasons = verdict(profile, stats, audit_result, kills=len(record.kills))
        if record.timed_out:
            reasons.append("Locust did not stop by itself within the run time plus a minute")
        if opts.kills and len(record.kills) < opts.kills:
            reasons.append(f"only {len(record.kills)} of {opts.kills} kills happened")
        summary = _summary(
            profile, stats, audit_result, record, ramp, record_json,
            reasons=reasons, surge=multiplier if profile.name == "flood-surge" else None,
        )  # fmt: skip
        summary["report_mix"] = report_mix(ledger, pool)
        _write_outputs(run_dir, summary, record, duration, profile.name, ramp)
        log.info("%.1f s: audited, summary and plot written", time.monotonic() - clock)
        return (1 if reasons else 0), summary, run_dir
    finally:
        if server is not None:
            server.stop()
        (run_dir / CREDENTIALS_FILE).unlink(missing_ok=True)
        if schema is not None and base_url:
            drop_postgres_schema(base_url, schema)
        tmp.cleanup()


def report_mix(
    ledger: Iterable[dict[str, Any]], payloads: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """What the reports sent were: per route, per category, and how many were flood extras."""
    numbers = [
        int(r["p"])
        for r in ledger
        if r.get("e") == "sent" and 0 <= int(r.get("p", -1)) < len(payloads)
    ]
    sent = [payloads[n] for n in numbers]
    flood = [p for p in sent if p["flood"]]
    return {
        "reports": len(sent),
        "by_route": dict(Counter(p["route"] for p in sent).most_common()),
        "by_category": dict(Counter(p["category"] for p in sent).most_common()),
        "flood_extras": len(flood),
        "flood_extra_kelurahan_top": dict(Counter(p["kelurahan"] for p in flood).most_common(5)),
    }


def _read_json(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def _summary(
    profile: Profile, stats: dict[str, Any], audit_result: dict[str, Any], record: RunRecord,
    ramp: dict[str, Any] | None, run: dict[str, Any], *, reasons: list[str],
    surge: float | None,
) -> dict[str, Any]:  # fmt: skip
    requests = int(stats.get("requests") or 0)
    failures = int(stats.get("failures") or 0)
    summary: dict[str, Any] = {
        **run,
        "started_at": datetime.fromtimestamp(record.started).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "requests": requests,
        "rps": stats.get("rps"),
        "p50_ms": stats.get("p50_ms"),
        "p95_ms": stats.get("p95_ms"),
        "p99_ms": stats.get("p99_ms"),
        "failures": failures,
        "failure_ratio": round(failures / requests, 5) if requests else None,
        "outage_failures": stats.get("outage_failures", 0),
        "endpoints": stats.get("endpoints", {}),
        "errors": stats.get("errors", []),
        "acknowledged": audit_result["acknowledged"],
        "stored": audit_result["stored"],
        "lost": audit_result["lost"],
        "duplicates": audit_result["duplicates"],
        "audit": audit_result,
        "kill_log": [asdict(k) for k in record.kills],
        "thresholds": {
            "max_failure_ratio": profile.max_failure_ratio,
            "max_p99_ms": profile.max_p99_ms,
        },
        "passed": not reasons,
        "reasons": reasons,
    }
    if surge is not None:
        summary["surge_multiplier"] = surge
    if profile.name == "ramp":
        summary["breaking_point"] = (ramp or {}).get("breaking_point")
        summary["ramp"] = ramp
    return summary


def _write_outputs(
    run_dir: Path, summary: dict[str, Any], record: RunRecord, duration: float, profile: str,
    ramp: dict[str, Any] | None,
) -> None:  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    breaking_s = None
    if ramp and ramp.get("breaking_point"):
        broken = [s for s in ramp["steps"] if s.get("broken")]
        if broken:
            breaking_s = float(broken[0]["step"]) * float(ramp["step_s"])
    plot_run(
        history(run_dir / "locust"),
        run_dir / "loadtest.png",
        title=f"twin loadtest --profile {profile}: {summary['rps'] or 0:.0f} requests/s, "
        f"p99 {summary['p99_ms'] or 0:.0f} ms, lost {summary['lost']}, "
        f"duplicates {summary['duplicates']}",
        started=record.started,
        kills=record.kills,
        surge=(duration / 3, 2 * duration / 3) if profile == "flood-surge" else None,
        breaking_s=breaking_s,
        day_s=duration if profile == "typical-day" else None,
    )


def format_summary(summary: dict[str, Any], run_dir: Path) -> str:
    """A few lines for the terminal."""
    lines = [
        f"profile {summary['profile']}: {summary['requests']:,} requests, "
        f"{summary['rps'] or 0:.1f} requests/s, p50 {summary['p50_ms'] or 0:.0f} ms, "
        f"p95 {summary['p95_ms'] or 0:.0f} ms, p99 {summary['p99_ms'] or 0:.0f} ms, "
        f"failures {summary['failures']} ({summary['outage_failures']} without an HTTP answer: refused, reset, timed out)",
        f"audit: acknowledged {summary['acknowledged']:,}, stored {summary['stored']:,}, "
        f"lost {summary['lost']}, duplicates {summary['duplicates']}, "
        f"unexpected {summary['audit']['unexpected']}, "
        f"wrong kelurahan {summary['audit']['wrong_kelurahan']}; "
        f"retried {summary['audit']['retried']}, replayed {summary['audit']['replayed']}",
    ]
    if summary["kill_log"]:
        kills = ", ".join(
            f"{k['at_s']:.1f} s (down {k['down_s']:.1f} s)" for k in summary["kill_log"]
        )
        lines.append(f"API killed with SIGKILL at {kills}")
    if summary["profile"] == "ramp":
        bp = summary.get("breaking_point")
        if bp:
            good = bp.get("last_good") or {}
            lines.append(
                f"breaking point: {bp['users']} users ({bp['why']}); last good step "
                f"{good.get('users', 0)} users at {good.get('rps', 0):.0f} requests/s, "
                f"p99 {good.get('p99_ms', 0):.0f} ms"
            )
        else:
            lines.append("breaking point: not reached")
    lines.append("PASSED" if summary["passed"] else "FAILED: " + "; ".join(summary["reasons"]))
    lines.append(f"wrote {run_dir}/")
    return "\n".join(lines)


def reaudit(run_dir: Path, database_url: str, data_dir: str | None = None) -> dict[str, Any]:
    """Audit a finished run again, e.g. once remote workers' ledgers are copied into it."""
    from loadtest.payloads import read_pool
    from twin.datadir import resolve_data_dir
    from twin.kelurahan import KelurahanIndex, load_kelurahan

    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    paths = resolve_data_dir(data_dir)
    index = KelurahanIndex(load_kelurahan(paths.require(paths.kelurahan)))

    def relocate(lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
        rows = index.locate_many(list(lons), list(lats))
        return [str(index.codes[r]) if r >= 0 else None for r in rows]

    stored = read_stored(database_url, str(run["run_tag"]))
    return audit(read_ledger(run_dir), stored, read_pool(run_dir).payloads, relocate)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m loadtest.runner audit RUN_DIR --database-url URL``: audit a run again."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m loadtest.runner")
    commands = parser.add_subparsers(dest="command", required=True)
    again = commands.add_parser("audit", help="audit a finished run against its database")
    again.add_argument("run_dir", type=Path)
    again.add_argument("--database-url", required=True)
    again.add_argument("--data", metavar="DIR")
    args = parser.parse_args(argv)
    result = reaudit(args.run_dir, args.database_url, args.data)
    print(json.dumps(result, indent=2))  # noqa: T201
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
