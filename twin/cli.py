"""The `twin` command: city model, simulation runs and benchmarks.

Every `TwinError` (a missing file, a malformed scenario, a bad coordinate) becomes one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from twin.cli_experiments import (
    add_bench_experiments,
    add_experiment_commands,
    add_parallel_options,
)
from twin.datadir import PROJECT_ROOT
from twin.errors import ScenarioError, TwinError

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger("twin")


def _add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="Jakarta data directory (default: $TWIN_DATA_DIR, else data/jakarta in the project)",
    )


def _cmd_city_info(args: argparse.Namespace) -> int:
    from twin.city import load_city
    from twin.cityinfo import city_summary, format_summary

    info = city_summary(load_city(args.data, road_file=args.roads, progress=not args.json))
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    return 0


def _cmd_city_map(args: argparse.Namespace) -> int:
    from twin.city import load_city
    from twin.citymap import draw_city_map

    out = draw_city_map(load_city(args.data, road_file=args.roads, progress=True), Path(args.out))
    print(f"wrote {out}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    if args.replications is not None and args.replications != 1:
        from twin.cli_experiments import cmd_replicate

        return cmd_replicate(args)
    from tqdm import tqdm

    from twin.city import load_city
    from twin.output import format_summary, write_run
    from twin.runner import run_scenario
    from twin.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    days = args.days if args.days is not None else scenario.run.days
    seed = args.seed if args.seed is not None else scenario.run.seed
    if days < 1:
        raise ScenarioError(f"--days must be >= 1, got {days}")
    city = load_city(args.data, speeds=scenario.city.speed_settings(), progress=True)
    with tqdm(
        total=days, desc=f"simulating {scenario.name}", unit="day", disable=args.quiet
    ) as bar:
        result = run_scenario(city, scenario, seed=seed, days=days, progress=bar.update)
    out = Path(args.out) if args.out else PROJECT_ROOT / "reports_out" / f"{scenario.name}-{seed}"
    write_run(result, city, out)
    print(format_summary(result.summary))
    print(f"\nwrote {out}/: summary.json, reports.parquet, kelurahan.csv and 4 PNG plots")
    return 0


def _cmd_bench_city(args: argparse.Namespace) -> int:
    from twin.bench import CITY_TARGETS, bench_city, format_bench

    results = bench_city(args.data, repeat=args.repeat, cold=not args.no_cold)
    print(json.dumps(results, indent=2) if args.json else format_bench(results, CITY_TARGETS))
    return 0


def _cmd_bench_sim(args: argparse.Namespace) -> int:
    from twin.bench import SIM_TARGETS, bench_sim, format_bench

    results = bench_sim(
        args.data, days=args.days, reports_per_day=args.reports_per_day, repeat=args.repeat
    )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_bench(results, SIM_TARGETS))
        print(
            f"{results['reports']:,} reports ({results['ppsu_jobs']:,} PPSU jobs); bare SimPy loop with the same "
            f"number of jobs: {results['bare_simpy_s']:.2f} s, ratio {results['ratio_to_bare_simpy']:.2f}"
        )
    return 0


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
    from intake.store import create_officer
    from twin.datadir import resolve_data_dir
    from twin.kelurahan import load_kelurahan

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


def _cmd_loadtest(args: argparse.Namespace) -> int:
    from loadtest.runner import LoadTestOptions, format_summary, run_loadtest

    options = LoadTestOptions(
        profile=args.profile,
        duration_s=args.duration,
        users=args.users,
        host=args.host,
        database_url=args.database_url,
        kills=args.kill,
        workers=args.workers,
        seed=args.seed,
        out=Path(args.out) if args.out else None,
        data_dir=args.data,
        scenario=Path(args.scenario),
        server_workers=args.server_workers,
        idempotency=not args.no_idempotency,
        client_timeout_s=args.client_timeout,
    )
    code, summary, run_dir = run_loadtest(options)
    print(format_summary(summary, run_dir))
    return code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `twin` subcommand."""
    parser = argparse.ArgumentParser(
        prog="twin", description="Digital twin of Jakarta's citizen-complaint handling."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    city = commands.add_parser("city", help="the city model: kelurahan, roads, depots")
    city_cmds = city.add_subparsers(dest="city_command", required=True, metavar="SUBCOMMAND")
    info = city_cmds.add_parser("info", help="counts, network size, data gaps, cache status")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    city_map = city_cmds.add_parser("map", help="draw kelurahan, roads and depots to a PNG")
    city_map.add_argument("--out", required=True, metavar="FILE.png", help="output PNG")
    for sub in (info, city_map):
        _add_data_option(sub)
        sub.add_argument(
            "--roads",
            type=Path,
            metavar="FILE",
            help="road source instead of the extract (.graphml, .osm)",
        )
    info.set_defaults(func=_cmd_city_info)
    city_map.set_defaults(func=_cmd_city_map)

    run = commands.add_parser("run", help="simulate a scenario and write KPIs, records and plots")
    run.add_argument("scenario", help="scenario TOML file, e.g. scenarios/jakarta-2016.toml")
    run.add_argument("--days", type=int, help="simulated days (default: the scenario's run.days)")
    run.add_argument("--seed", type=int, help="random seed (default: the scenario's run.seed)")
    run.add_argument(
        "--out", metavar="DIR", help="output folder (default reports_out/<scenario>-<seed>/)"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--replications",
        type=int,
        metavar="R",
        help="R independent replications: KPI means with 95 %% CIs",
    )
    add_parallel_options(run)
    _add_data_option(run)
    run.set_defaults(func=_cmd_run)
    add_experiment_commands(commands, _add_data_option)

    serve = commands.add_parser("serve", help="run the intake API (Open311 GeoReport v2 and JSON)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    for sub in (serve,):
        sub.add_argument(
            "--database-url",
            help="SQLAlchemy URL (default: SQLite under var/; postgresql://... for PostgreSQL)",
        )
        _add_data_option(sub)
    serve.set_defaults(func=_cmd_serve)

    keys = commands.add_parser("keys", help="channel API keys of the intake API")
    keys_cmds = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_add = keys_cmds.add_parser("add", help="issue a key for a channel and print it")
    keys_add.add_argument(
        "--channel", required=True, help="jaki, qlue, twitter, email, ... or open311"
    )
    keys_add.add_argument("--database-url", help="as for twin serve")
    keys_add.set_defaults(func=_cmd_keys_add)

    officers = commands.add_parser("officers", help="kelurahan officers of the intake API")
    officers_cmds = officers.add_subparsers(
        dest="officers_command", required=True, metavar="ACTION"
    )
    officers_add = officers_cmds.add_parser("add", help="issue an officer token and print it")
    officers_add.add_argument(
        "--kelurahan", required=True, help="Kemendagri code, e.g. 31.71.01.1001"
    )
    officers_add.add_argument("--role", choices=("officer", "coordinator"), default="officer")
    officers_add.add_argument("--database-url", help="as for twin serve")
    _add_data_option(officers_add)
    officers_add.set_defaults(func=_cmd_officers_add)

    bench = commands.add_parser("bench", help="shipped benchmarks against the speed targets")
    bench_cmds = bench.add_subparsers(dest="bench_command", required=True, metavar="TARGET")
    add_bench_experiments(bench_cmds, _add_data_option)
    bench_city = bench_cmds.add_parser("city", help="city build, load, depot tables, lookups")
    _add_data_option(bench_city)
    bench_city.add_argument(
        "--repeat", type=int, default=5, help="repetitions per measure (median)"
    )
    bench_city.add_argument("--no-cold", action="store_true", help="skip the cold build (~25 s)")
    bench_city.add_argument("--json", action="store_true", help="print JSON")
    bench_city.set_defaults(func=_cmd_bench_city)
    bench_sim = bench_cmds.add_parser(
        "sim", help="one simulated year of all Jakarta vs a bare SimPy loop"
    )
    _add_data_option(bench_sim)
    bench_sim.add_argument("--days", type=int, default=365, help="simulated days (default 365)")
    bench_sim.add_argument(
        "--reports-per-day", type=float, default=1000.0, help="demand (default 1000)"
    )
    bench_sim.add_argument("--repeat", type=int, default=3, help="repetitions (median)")
    bench_sim.add_argument("--json", action="store_true", help="print JSON")
    bench_sim.set_defaults(func=_cmd_bench_sim)
    bench_intake = bench_cmds.add_parser(
        "intake", help="accepted reports/s of the intake API on loopback"
    )
    _add_data_option(bench_intake)
    bench_intake.add_argument("--requests", type=int, default=20_000, help="reports per run")
    bench_intake.add_argument("--concurrency", type=int, default=64, help="client connections")
    bench_intake.add_argument("--workers", type=int, default=1, help="server worker processes")
    bench_intake.add_argument("--database-url", help="default: a fresh SQLite file per run")
    bench_intake.add_argument("--repeat", type=int, default=3, help="runs (median)")
    bench_intake.add_argument("--json", action="store_true", help="print JSON")
    bench_intake.set_defaults(func=_cmd_bench_intake)

    from loadtest.profiles import PROFILES

    loadtest = commands.add_parser(
        "loadtest", help="Locust load test of the intake API with a zero-loss audit"
    )
    loadtest.add_argument("--profile", required=True, choices=list(PROFILES), help="load shape")
    loadtest.add_argument("--duration", type=float, metavar="S", help="run seconds")
    loadtest.add_argument("--users", type=int, metavar="N", help="peak users (ramp: most)")
    loadtest.add_argument("--host", metavar="URL", help="a running API (default: start one)")
    loadtest.add_argument(
        "--database-url", help="the API's database (default: a fresh SQLite file; PostgreSQL: "
        "a fresh schema in it, dropped afterwards)"
    )  # fmt: skip
    loadtest.add_argument(
        "--kill", type=int, default=0, metavar="N", help="SIGKILL the API N times"
    )
    loadtest.add_argument("--workers", type=int, default=0, metavar="N", help="Locust workers")
    loadtest.add_argument("--seed", type=int, help="payload seed (default: the scenario's)")
    loadtest.add_argument("--out", metavar="DIR", help="run folder (default reports_out/...)")
    loadtest.add_argument(
        "--scenario", default=str(PROJECT_ROOT / "scenarios" / "jakarta-2016.toml"),
        help="scenario of the demand model (default scenarios/jakarta-2016.toml)",
    )  # fmt: skip
    loadtest.add_argument("--server-workers", type=int, default=1, help="API worker processes")
    loadtest.add_argument(
        "--client-timeout", type=float, default=10.0, metavar="S", help="request timeout"
    )
    loadtest.add_argument(
        "--no-idempotency", action="store_true",
        help="negative control: send reports without idempotency keys (the audit must fail)",
    )  # fmt: skip
    _add_data_option(loadtest)
    loadtest.set_defaults(func=_cmd_loadtest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `twin` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    try:
        return int(args.func(args))
    except TwinError as exc:
        print(f"twin: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("twin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
