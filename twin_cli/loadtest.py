"""The load-test command: `twin loadtest`."""

from __future__ import annotations

import argparse
from pathlib import Path

from twin_cli.common import add_data_option

DRIVE_SPEED = 720.0  # officer-drive: 12 simulated minutes a second, a simulated day in 2 minutes


def _drive_profile(args: argparse.Namespace) -> int:
    """``--profile officer-drive``: `twin drive` against the API (started here unless --host)."""
    import contextlib
    import os
    import tempfile

    from intake.bench import running_server
    from intake.db import make_engine, migrate
    from loadtest.profiles import PROFILES, SERVER_RATES
    from twin.errors import TwinError
    from twin_cli.live import cmd_drive

    profile = PROFILES["officer-drive"]
    duration = args.duration or profile.duration_s
    if args.host and not args.database_url:
        raise TwinError("--host needs --database-url (the API's database) to issue credentials")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="twin-drive-")))
        url = args.database_url or f"sqlite:///{tmp / 'intake.db'}"
        host = args.host
        if host is None:
            engine = make_engine(url)
            migrate(engine)
            engine.dispose()
            env = {
                **SERVER_RATES,
                "INTAKE_KPI_CACHE_SECONDS": "0",
                "INTAKE_MEDIA_DIR": str(tmp / "media"),
            }
            host, _ = stack.enter_context(
                running_server(url, data_dir=args.data, workers=args.server_workers, env=env)
            )
        drive = argparse.Namespace(
            scenario=args.scenario, host=host, database_url=url, speed=DRIVE_SPEED,
            hours=duration * DRIVE_SPEED / 3600.0, kelurahan=None, seed=args.seed,
            threads=args.users or profile.users, out=args.out, forecast_at=None,
            data=args.data or os.environ.get("TWIN_DATA_DIR"), profile_limits=profile,
        )  # fmt: skip
        return cmd_drive(drive)


def _cmd_loadtest(args: argparse.Namespace) -> int:
    from loadtest.runner import LoadTestOptions, format_summary, run_loadtest

    if args.profile == "officer-drive":
        return _drive_profile(args)

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


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twin loadtest`."""
    from loadtest.options import DEFAULT_SCENARIO
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
        "--scenario", default=str(DEFAULT_SCENARIO),
        help="scenario of the demand model (default scenarios/jakarta-2016-calibrated.toml)",
    )  # fmt: skip
    loadtest.add_argument("--server-workers", type=int, default=1, help="API worker processes")
    loadtest.add_argument(
        "--client-timeout", type=float, default=10.0, metavar="S", help="request timeout"
    )
    loadtest.add_argument(
        "--no-idempotency", action="store_true",
        help="negative control: send reports without idempotency keys (the audit must fail)",
    )  # fmt: skip
    add_data_option(loadtest)
    loadtest.set_defaults(func=_cmd_loadtest)
