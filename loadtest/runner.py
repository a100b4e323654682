"""`twin loadtest`: prepare a run, start the intake API, run Locust, kill and restart the API on
demand, audit the database, and write the run folder.

The steps of one run (`run_loadtest`), each the work of one module:

1. A payload pool drawn from the twin's demand model with the seed (`loadtest.payloads`), written
   to the run folder ``reports_out/loadtest-<profile>-<time>/`` with ``run.json``.
2. A fresh database (SQLite in a temporary folder; for PostgreSQL a schema of its own, dropped at
   the end), two channel keys (``jaki`` for the native API, ``qlue`` for Open311) and officers of
   the busiest kelurahan, all through the admin commands ``twin keys add`` and
   ``twin officers add``, as an operator would (`loadtest.server`).
3. ``twin serve`` on a free loopback port, then Locust as a subprocess (``--headless``, one
   process, or one master and ``--workers`` workers), with the profile's shape. With ``--kill N``
   the API is killed with SIGKILL N times, evenly over the run, and restarted on the same port
   (`loadtest.locust_run`).
4. The audit (`loadtest.audit`), a Jepsen-style set check of the client's ledger against the
   database: every report acknowledged with 201 is stored exactly once, with what was sent, in
   the kelurahan the city model puts its point in.
5. ``summary.json``, ``loadtest.png`` (requests/s, latency percentiles, users over time) beside
   Locust's CSV files and HTML report, and the exit code: 0 only when the profile's thresholds
   hold and the audit is clean (`loadtest.results`).

Nothing here imports Locust: Locust (and its gevent monkey-patching) lives only in the
subprocesses running `loadtest.locustfile`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from loadtest.audit import audit, read_ledger, read_stored, reaudit
from loadtest.locust_run import locust_commands, run_locust
from loadtest.options import PROJECT_ROOT, LoadTestOptions, validated_profile
from loadtest.results import (
    build_summary,
    format_summary,
    locust_stats,
    report_mix,
    verdict,
    write_outputs,
)
from loadtest.server import (
    PG_PREFIXES,
    Server,
    drop_postgres_schema,
    fresh_postgres_schema,
    issue_credentials,
    migrate_database,
    warm_up,
)
from twin.city.datadir import output_root
from twin.errors import TwinError

__all__ = ["LoadTestOptions", "format_summary", "main", "run_loadtest"]

log = logging.getLogger("twin.loadtest")

CREDENTIALS_FILE = "credentials.json"


def _public_url(url: str) -> str:
    """A database URL without its password."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _officer_kelurahan(meta: dict[str, Any], profile: str, n: int) -> list[str]:
    busiest = list(meta["busiest_kelurahan"])
    if profile == "flood-surge":  # officers where the flood reports go, and where the most go
        flood = list(meta["busiest_flood_kelurahan"])
        busiest = [c for pair in zip(flood, busiest, strict=False) for c in pair]
    return list(dict.fromkeys(busiest))[: max(1, n)]


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
    from twin.city.assembly import load_city
    from twin.model.scenario import load_scenario

    profile = validated_profile(opts)
    clock = time.monotonic()
    duration = float(opts.duration_s or profile.duration_s)
    users = int(opts.users or profile.users)
    now = datetime.now()
    run_dir = opts.out or output_root() / f"loadtest-{profile.name}-{now:%Y%m%d-%H%M%S}"
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
        summary = build_summary(
            profile, stats, audit_result, record, ramp, record_json,
            reasons=reasons, surge=multiplier if profile.name == "flood-surge" else None,
        )  # fmt: skip
        summary["report_mix"] = report_mix(ledger, pool)
        write_outputs(run_dir, summary, record, duration, profile.name, ramp)
        log.info("%.1f s: audited, summary and plot written", time.monotonic() - clock)
        return (1 if reasons else 0), summary, run_dir
    finally:
        if server is not None:
            server.stop()
        (run_dir / CREDENTIALS_FILE).unlink(missing_ok=True)
        if schema is not None and base_url:
            drop_postgres_schema(base_url, schema)
        tmp.cleanup()


def _read_json(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


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
