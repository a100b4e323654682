"""The intake service's commands: `twin serve`, `twin keys`, `twin officers`, `twin export`,
`twin bench intake`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from twin.errors import TwinError
from twin_cli.common import add_data_option

log = logging.getLogger("twin")


def _database_url(args: argparse.Namespace) -> str:
    from intake.config import default_database_url

    return str(args.database_url or default_database_url())


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from intake.config import Settings
    from intake.db import make_engine, migrate

    try:
        Settings()  # a bad INTAKE_* variable: one line now, not a traceback in every worker
    except ValueError as exc:
        raise TwinError(str(exc)) from exc
    url = _database_url(args)
    try:
        version = migrate(make_engine(url))  # once, before any worker starts
    except Exception as exc:  # a wrong URL or an unreachable server: one line, not a traceback
        raise TwinError(
            f"database {url.split('@')[-1]}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    os.environ["INTAKE_DATABASE_URL"] = url
    if args.data:
        os.environ["INTAKE_DATA_DIR"] = str(Path(args.data).resolve())
    if args.forecast_every > 0:  # the twin, on a schedule, in its own process (twin_cli.live)
        from twin_cli.live import start_forecast_schedule

        forecast_dir = Settings().forecast_dir
        os.environ["INTAKE_FORECAST_DIR"] = str(forecast_dir)
        extra = [args.forecast_scenario] if args.forecast_scenario else []
        extra += ["--hours", str(args.forecast_hours)]
        extra += ["--replications", str(args.forecast_replications)]
        extra += ["--data", str(Path(args.data).resolve())] if args.data else []
        start_forecast_schedule(url, forecast_dir, every_min=args.forecast_every, extra=extra)
    log.warning(
        "intake API on http://%s:%d (schema v%d, %s)",
        args.host,
        args.port,
        version,
        url.split("://")[0],
    )
    uvicorn.run(
        "intake.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )
    return 0


def _cmd_keys_add(args: argparse.Namespace) -> int:
    from intake.db import make_engine, migrate
    from intake.store import create_api_key
    from twin.entities import CHANNELS

    if args.channel not in CHANNELS:
        raise TwinError(
            f"--channel {args.channel!r}: unknown channel; choose from {', '.join(CHANNELS)}"
        )
    engine = make_engine(_database_url(args))
    migrate(engine)
    with engine.begin() as conn:
        secret = create_api_key(conn, channel=args.channel)
    print(secret)
    return 0


def _cmd_officers_add(args: argparse.Namespace) -> int:
    from intake.db import make_engine, migrate
    from intake.deps import ADMIN_ROLE, ALL_KELURAHAN
    from intake.store import create_officer
    from twin.city.datadir import resolve_data_dir
    from twin.city.kelurahan import load_kelurahan

    if args.role == ADMIN_ROLE:
        if args.kelurahan not in (None, "all"):
            raise TwinError("--role admin sees every kelurahan: leave out --kelurahan")
        args.kelurahan = ALL_KELURAHAN
    elif args.kelurahan is None:
        raise TwinError(f"--role {args.role} needs --kelurahan CODE (e.g. 31.71.01.1001)")
    else:
        paths = resolve_data_dir(args.data)
        codes = set(load_kelurahan(paths.require(paths.kelurahan))["kode_kemendagri"])
        if args.kelurahan not in codes:
            raise TwinError(
                f"--kelurahan {args.kelurahan!r}: no such kelurahan code (e.g. 31.71.01.1001)"
            )
    engine = make_engine(_database_url(args))
    migrate(engine)
    with engine.begin() as conn:
        officer_id, token = create_officer(conn, kelurahan_code=args.kelurahan, role=args.role)
    print(token)
    log.info("officer %d (%s) of kelurahan %s", officer_id, args.role, args.kelurahan)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import sys
    from collections.abc import Iterator
    from contextlib import nullcontext

    import pyarrow as pa

    from intake.db import make_engine
    from intake.export import (
        ExportRangeError,
        encode,
        export_range,
        kelurahan_places,
        record_batches,
    )
    from twin.city.datadir import resolve_data_dir
    from twin.city.kelurahan import load_kelurahan

    try:
        span = export_range(args.since, args.until)
    except ExportRangeError as exc:
        raise TwinError(str(exc)) from exc
    fmt = args.format or ("parquet" if str(args.out).endswith(".parquet") else "csv")
    paths = resolve_data_dir(args.data)
    places = kelurahan_places(load_kelurahan(paths.require(paths.kelurahan)))
    engine = make_engine(_database_url(args))
    out = Path(args.out) if args.out != "-" else None
    partial = out.with_name(out.name + ".partial") if out else None
    rows = 0

    def counted(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for batch in batches:
            rows += batch.num_rows
            yield batch

    try:
        with (
            engine.connect() as conn,
            partial.open("wb") if partial else nullcontext(sys.stdout.buffer) as sink,
        ):
            batches = counted(record_batches(conn, span, places=places))
            for chunk in encode(batches, fmt):
                sink.write(chunk)
    except BaseException:
        if partial:
            partial.unlink(missing_ok=True)  # never a half-written export under its name
        raise
    finally:
        engine.dispose()
    if out and partial:
        partial.replace(out)
        log.warning("wrote %s: %d reports (%s)", out, rows, fmt)
    return 0


def _cmd_webhooks(args: argparse.Namespace) -> int:
    from intake import webhooks
    from intake.config import Settings
    from intake.db import make_engine, migrate
    from intake.errors import ApiError
    from twin.city.datadir import resolve_data_dir
    from twin.city.kelurahan import load_kelurahan

    engine = make_engine(_database_url(args))
    migrate(engine)
    try:
        if args.webhooks_command == "add":
            code = "*" if args.kelurahan == "all" else args.kelurahan
            if code != "*":
                paths = resolve_data_dir(args.data)
                if code not in set(load_kelurahan(paths.require(paths.kelurahan))["kode_kemendagri"]):  # fmt: skip
                    raise TwinError(f"--kelurahan {code!r}: no such kelurahan code (or: all)")
            allow = Settings().webhook_allow_private
            with engine.begin() as conn:
                wid, secret = webhooks.subscribe(
                    conn, kelurahan_code=code, url=args.url, allow_private=allow
                )
            print(secret)
            log.info("webhook %d for kelurahan %s: %s", wid, code, args.url)
        elif args.webhooks_command == "retry":
            with engine.begin() as conn:
                if not webhooks.requeue(conn, delivery_id=args.delivery):
                    raise TwinError(f"--delivery {args.delivery}: no dead delivery with this id")
            print(f"delivery {args.delivery} queued again")
        else:  # dead: the dead letters
            with engine.connect() as conn:
                rows = webhooks.list_deliveries(conn, state="dead", limit=args.limit)
            for r in rows:
                print(
                    f"delivery {r['id']} webhook {r['webhook_id']} {r['kind']} report "
                    f"{r['report_id']} event {r['event_id']}: {r['attempts']} attempts, "
                    f"last error {r['last_error']}"
                )
            log.info("%d dead deliveries", len(rows))
    except ApiError as exc:  # a refused URL
        raise TwinError(f"--url: {exc.message}") from exc
    finally:
        engine.dispose()
    return 0


def _cmd_bench_intake(args: argparse.Namespace) -> int:
    from intake.bench import INTAKE_TARGETS, bench_intake
    from twin.bench import format_bench

    results = bench_intake(
        requests=args.requests,
        concurrency=args.concurrency,
        workers=args.workers,
        database_url=args.database_url,
        data_dir=args.data,
        repeat=args.repeat,
    )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_bench(results, INTAKE_TARGETS))
        print(
            f"{results['database']}, {results['workers']} worker(s), {results['concurrency']} connections, "
            f"{results['requests']:,} reports per run; p50 {results['p50_ms']:.1f} ms; "
            f"non-201 {results['non_201']}, lost {results['lost']}"
        )
    return 0 if results["lost"] == 0 else 1


def _cmd_bench_ops(args: argparse.Namespace) -> int:
    from intake.bench_ops import OPS_TARGETS, bench_ops
    from twin.bench import format_bench

    try:
        results = bench_ops(
            reports_open=args.reports,
            subscribers=args.subscribers,
            rate=args.rate,
            seconds=args.seconds,
            repeat=args.repeat,
            data_dir=args.data,
        )
    except (RuntimeError, ImportError) as exc:  # no Chromium or no Playwright: one line
        raise TwinError(str(exc)) from exc
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_bench(results, OPS_TARGETS))
        print(
            f"{results['reports_open']:,} open reports; /ops ready in "
            f"{', '.join(f'{t:.2f}' for t in results['ops_ready_runs_s'])} s; "
            f"{results['subscribers']} subscribers, {results['reports_posted']} reports at "
            f"{results['rate_per_s']:g}/s: event p50 {results['event_p50_s']:.3f} s, max "
            f"{results['event_max_s']:.3f} s, {results['events_lost']} lost"
        )
    met = (
        results["ops_ready_s"] <= 2.0
        and results["event_p99_s"] <= 1.0
        and results["events_lost"] == 0
    )
    return 0 if met else 1


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twin serve`, `twin keys` and `twin officers`."""
    serve = commands.add_parser("serve", help="run the intake API (Open311 GeoReport v2 and JSON)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    for sub in (serve,):
        sub.add_argument(
            "--database-url",
            help="SQLAlchemy URL (default: SQLite under var/; postgresql://... for PostgreSQL)",
        )
        add_data_option(sub)
    serve.add_argument(
        "--forecast-every", type=float, default=0.0, metavar="MINUTES",
        help="run twin forecast on this schedule for /api/v1/forecast (default 0: never)",
    )  # fmt: skip
    serve.add_argument("--forecast-scenario", help="the scheduled forecast's scenario TOML")
    serve.add_argument("--forecast-hours", type=float, default=72.0, help="its horizon (72)")
    serve.add_argument("--forecast-replications", type=int, default=10, help="its replications")
    serve.set_defaults(func=_cmd_serve)

    keys = commands.add_parser("keys", help="channel API keys of the intake API")
    keys_cmds = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_add = keys_cmds.add_parser("add", help="issue a key for a channel and print it")
    keys_add.add_argument(
        "--channel", required=True, help="jaki, qlue, twitter, email, ... or open311"
    )
    keys_add.add_argument("--database-url", help="as for twin serve")
    keys_add.set_defaults(func=_cmd_keys_add)

    export = commands.add_parser(
        "export", help="one row per report of the intake database, as CSV or Parquet"
    )
    export.add_argument("--since", required=True, help="first day, e.g. 2026-01-01")
    export.add_argument("--until", required=True, help="last day (inclusive); at most a year")
    export.add_argument("--format", choices=("csv", "parquet"), help="default: by --out's suffix")
    export.add_argument("--out", default="-", help="file to write (default: standard output)")
    export.add_argument("--database-url", help="as for twin serve")
    add_data_option(export)
    export.set_defaults(func=_cmd_export)

    hooks = commands.add_parser("webhooks", help="alerts to the lurah: signed webhooks")
    hooks_cmds = hooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    hooks_add = hooks_cmds.add_parser(
        "add", help="subscribe a URL to a kelurahan's events and print its signing secret"
    )
    hooks_add.add_argument("--kelurahan", required=True, help="Kemendagri code, or all")
    hooks_add.add_argument("--url", required=True, help="public http(s) URL that receives POSTs")
    add_data_option(hooks_add)
    hooks_dead = hooks_cmds.add_parser("dead", help="list the dead letters")
    hooks_dead.add_argument("--limit", type=int, default=100, help="most rows (default 100)")
    hooks_retry = hooks_cmds.add_parser("retry", help="queue a dead delivery again")
    hooks_retry.add_argument("--delivery", type=int, required=True, help="its id (see dead)")
    for sub in (hooks_add, hooks_dead, hooks_retry):
        sub.add_argument("--database-url", help="as for twin serve")
        sub.set_defaults(func=_cmd_webhooks)

    officers = commands.add_parser("officers", help="kelurahan officers of the intake API")
    officers_cmds = officers.add_subparsers(
        dest="officers_command", required=True, metavar="ACTION"
    )
    officers_add = officers_cmds.add_parser("add", help="issue an officer token and print it")
    officers_add.add_argument(
        "--kelurahan", help="Kemendagri code, e.g. 31.71.01.1001 (not for --role admin)"
    )
    officers_add.add_argument(
        "--role",
        choices=("officer", "coordinator", "admin"),
        default="officer",
        help="admin: the control room, every kelurahan (default officer)",
    )
    officers_add.add_argument("--database-url", help="as for twin serve")
    add_data_option(officers_add)
    officers_add.set_defaults(func=_cmd_officers_add)


def add_bench_commands(bench_cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twin bench intake`."""
    bench_intake = bench_cmds.add_parser(
        "intake", help="accepted reports/s of the intake API on loopback"
    )
    add_data_option(bench_intake)
    bench_intake.add_argument("--requests", type=int, default=20_000, help="reports per run")
    bench_intake.add_argument("--concurrency", type=int, default=64, help="client connections")
    bench_intake.add_argument("--workers", type=int, default=1, help="server worker processes")
    bench_intake.add_argument("--database-url", help="default: a fresh SQLite file per run")
    bench_intake.add_argument("--repeat", type=int, default=3, help="runs (median)")
    bench_intake.add_argument("--json", action="store_true", help="print JSON")
    bench_intake.set_defaults(func=_cmd_bench_intake)

    bench_ops = bench_cmds.add_parser(
        "ops", help="/ops readiness with many open reports; event stream latency under load"
    )
    add_data_option(bench_ops)
    bench_ops.add_argument("--reports", type=int, default=10_000, help="open reports seeded")
    bench_ops.add_argument("--subscribers", type=int, default=200, help="event stream clients")
    bench_ops.add_argument("--rate", type=float, default=50.0, help="reports posted per second")
    bench_ops.add_argument(
        "--seconds", type=float, default=10.0, help="how long reports are posted"
    )
    bench_ops.add_argument("--repeat", type=int, default=3, help="/ops page loads (median)")
    bench_ops.add_argument("--json", action="store_true", help="print JSON")
    bench_ops.set_defaults(func=_cmd_bench_ops)
