"""`twin forecast`: the twin started from intake's live database, run ahead.

The composition root wires the reading: `intake.twin_state` reads the records (SQLite or
PostgreSQL) into frames with the shared column names, and `twin` never imports intake.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin_cli.common import add_data_option, add_parallel_options

if TYPE_CHECKING:
    from twin.experiments.forecast import LiveInput

log = logging.getLogger("twin")
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "jakarta-2024.toml"
TIMEZONE = "Asia/Jakarta"


def _public(url: str) -> str:
    """The URL without its password (errors must not print it)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as given: it holds no usable password
        return url


def parse_as_of(text: str | None) -> pd.Timestamp:
    """``--as-of``: ISO time (naive times are Jakarta's); None: now."""
    if text is None:
        return pd.Timestamp.now(tz="UTC")
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise TwinError(
            f"--as-of: {text!r} is not a time (use ISO, e.g. 2024-03-05T14:00)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(TIMEZONE)
    return stamp.tz_convert("UTC")


@dataclass(frozen=True, slots=True)
class DriveClock:
    """The accelerated clock of a drive: wall time `wall_origin` was simulated `sim_origin`, and
    a wall second is `speed` simulated seconds. A forecast of a driven database reads its times
    through it, so that reports have their simulated ages."""

    wall_origin: pd.Timestamp
    sim_origin: pd.Timestamp
    speed: float

    def to_wall(self, sim: pd.Timestamp) -> pd.Timestamp:
        return (self.wall_origin + (sim - self.sim_origin) / self.speed).floor("us")

    def to_sim(self, wall: pd.Series) -> pd.Series:  # type: ignore[type-arg]
        return self.sim_origin + (pd.to_datetime(wall, utc=True) - self.wall_origin) * self.speed


def read_live(
    url: str, as_of_text: str | None, hours: float, clock: DriveClock | None = None
) -> LiveInput:
    """The open reports at the as-of moment and the month's reports so far, from intake's database
    (through a drive's `clock`: `as_of_text` is then simulated time).

    Raises
    ------
    TwinError
        Unreachable or empty database, a schema version this twin does not know, an as-of in
        the future or before the first record, a horizon out of (0, 30 days].
    """
    import sqlalchemy as sa

    from intake.db import SCHEMA_VERSION, make_engine
    from intake.twin_state import open_records, period_times, span
    from twin.experiments.forecast import MAX_HOURS, LiveInput

    if not 0 < hours <= MAX_HOURS:
        raise TwinError(f"--hours must be in (0, {MAX_HOURS}] (30 days), got {hours:g}")
    as_of = parse_as_of(as_of_text)
    wall = as_of if clock is None else clock.to_wall(as_of)
    try:
        engine = make_engine(url)
    except (sa.exc.ArgumentError, ModuleNotFoundError, ValueError) as exc:
        raise TwinError(f"--database-url {_public(url)}: not a database URL ({exc})") from None
    try:
        with engine.connect() as conn:
            held = span(conn)
            if held.schema_version is None:
                raise TwinError(f"{_public(url)}: not an intake database (no schema_version table)")
            if held.schema_version != SCHEMA_VERSION:
                raise TwinError(
                    f"{_public(url)}: schema version {held.schema_version}; this twin reads "
                    f"version {SCHEMA_VERSION}"
                )
            if held.reports == 0 or held.first is None:
                raise TwinError(f"{_public(url)}: the database holds no reports")
            if wall > pd.Timestamp.now(tz="UTC"):
                raise TwinError(f"--as-of {as_of_text} is in the future")
            if wall < held.first:
                raise TwinError(
                    f"--as-of {as_of_text or as_of} is before the first record ({held.first})"
                )
            month = as_of.tz_convert(TIMEZONE).normalize().replace(day=1).tz_convert("UTC")
            since = month if clock is None else max(clock.to_wall(month), clock.wall_origin)
            records = open_records(conn, as_of=wall.to_pydatetime())
            period = period_times(conn, since=since.to_pydatetime(), as_of=wall.to_pydatetime())
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise TwinError(f"cannot read the database {_public(url)}: {reason}") from None
    finally:
        engine.dispose()
    if clock is not None:
        for frame, cols in ((records, ("received_at", "coordinated_at", "status_at")),
                            (period, ("received_at", "coordinated_at", "closed_at"))):  # fmt: skip
            for col in cols:
                frame[col] = clock.to_sim(frame[col])
    return LiveInput(records=records, period=period, as_of=as_of, hours=hours)


def cmd_forecast(args: argparse.Namespace) -> int:
    """`twin forecast`: breach probabilities, backlog and KPIs from the live state."""
    from twin.city.assembly import load_city
    from twin.city.datadir import output_root
    from twin.experiments.forecast import (
        ForecastTask,
        compare_runs,
        run_forecast_tasks,
        summarise,
    )
    from twin.model.scenario import load_scenario
    from twin.model.warm_start import check_records
    from twin.reports.folders import claim_output_dir, slug
    from twin.reports.forecast_files import forecast_document, write_forecast

    started = time.perf_counter()
    if args.replications < 2:
        raise TwinError(f"--replications must be >= 2, got {args.replications}")
    scenario = load_scenario(args.scenario)
    other = load_scenario(args.compare) if args.compare else None
    if args.seed is not None:
        import dataclasses

        scenario = dataclasses.replace(
            scenario, run=dataclasses.replace(scenario.run, seed=args.seed)
        )
        if other is not None:
            other = dataclasses.replace(other, run=dataclasses.replace(other.run, seed=args.seed))
    if other is not None and other.run.seed != scenario.run.seed:
        import dataclasses

        other = dataclasses.replace(
            other, run=dataclasses.replace(other.run, seed=scenario.run.seed)
        )
    live = read_live(args.database_url, args.as_of, args.hours)
    city = load_city(args.data, speeds=scenario.city.speed_settings(), progress=not args.quiet)
    check_records(city, scenario, live.records)
    if other is not None:
        check_records(city, other, live.records)
    tasks = [
        ForecastTask(label, sc, live, r, args.data)
        for label, sc in (("a", scenario), ("b", other))
        if sc is not None
        for r in range(args.replications)
    ]
    runs = run_forecast_tasks(tasks, workers=args.workers, dask_address=args.dask)
    runs_a = [x for x in runs if x.label == "a"]
    forecast = summarise(runs_a, live, city)
    comparison = None
    if other is not None:
        runs_b = [x for x in runs if x.label == "b"]
        comparison = {"scenario_b": other.name, "b_minus_a": compare_runs(runs_a, runs_b)}
    meta: dict[str, Any] = {
        "scenario": scenario.name,
        "as_of": live.as_of.isoformat(),
        "hours": live.hours,
        "replications": args.replications,
        "seed": scenario.run.seed,
        "open_reports": len(live.records),
        "period_start": live.period["received_at"].min().isoformat() if len(live.period) else None,
        "runtime_s": round(time.perf_counter() - started, 2),
    }
    document = forecast_document(forecast, meta, comparison)
    default = output_root() / slug(f"forecast-{scenario.name}-{live.as_of:%Y%m%dT%H%M}")
    out = Path(args.out) if args.out else default
    if not args.replace:
        out = claim_output_dir(out, overwrite=args.overwrite)
    write_forecast(forecast, document, city.table[~city.is_seribu], out)
    if not args.quiet:
        print(format_forecast(document))
        print(f"written to {out}")
    return 0


def format_forecast(doc: dict[str, Any]) -> str:
    """The few lines printed after a forecast."""
    so_far, ahead = doc["kpis_so_far"], doc["kpis_forecast"]

    def fmt(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    lines = [
        f"{doc['scenario']}: {doc['open_reports']:,} open reports at {doc['as_of']}, "
        f"{doc['hours']:g} h ahead, {doc['replications']} replications ({doc['runtime_s']} s)",
        f"  {'KPI':<30} {'so far':>10} {'at the horizon (95 % range)':>34}",
    ]
    for k, spec in (
        ("mean_coordination_h", ".2f"), ("share_coordinated_within_6h", ".3f"),
        ("mean_resolution_h", ".2f"), ("share_resolved_within_7d", ".3f"),
    ):  # fmt: skip
        a = ahead[k]
        lines.append(
            f"  {k:<30} {fmt(so_far[k], spec):>10} {fmt(a['mean'], spec):>14} "
            f"[{fmt(a['lo'], spec)}, {fmt(a['hi'], spec)}]"
        )
    b = doc["breaches_expected"]
    lines.append(
        f"  expected breaches within the horizon: 6 h {b['coordination_6h']:.1f}, "
        f"7 days {b['resolution_7d']:.1f}"
    )
    if "comparison" in doc:
        c = doc["comparison"]["b_minus_a"]
        lines.append(
            f"  {doc['comparison']['scenario_b']} minus {doc['scenario']} (paired, 95 % CI): "
            f"6-h breaches {c['breaches_6h']['mean']:+.1f} [{fmt(c['breaches_6h']['lo'], '+.1f')}, "
            f"{fmt(c['breaches_6h']['hi'], '+.1f')}], 7-day breaches {c['breaches_7d']['mean']:+.1f}"
        )
    return "\n".join(lines)


def cmd_bench_forecast(args: argparse.Namespace) -> int:
    """`twin bench forecast`: a live backlog in a fresh SQLite database, then `twin forecast`
    of all Jakarta on it, timed whole (reading, replications, files)."""
    import tempfile

    from twin.city.assembly import load_city
    from twin.model.scenario import load_scenario
    from twin_cli.backlog import seed_backlog

    scenario = load_scenario(args.scenario)
    as_of = pd.Timestamp("2024-03-05 14:00", tz=TIMEZONE).tz_convert("UTC")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/intake.db"
        city = load_city(args.data, speeds=scenario.city.speed_settings())
        seed_backlog(url, city, scenario, open_reports=args.open_reports, as_of=as_of)
        started = time.perf_counter()
        argv = ["--database-url", url, "--as-of", as_of.isoformat(), "--hours", str(args.hours),
                "--replications", str(args.replications), "--out", f"{tmp}/out", "--quiet"]  # fmt: skip
        argv += ["--data", args.data] if args.data else []
        argv += ["--workers", str(args.workers)] if args.workers else []
        argv += ["--dask", args.dask] if args.dask else []
        parser = argparse.ArgumentParser()
        add_commands(parser.add_subparsers())
        forecast_args = parser.parse_args(["forecast", args.scenario, *argv])
        cmd_forecast(forecast_args)
        elapsed = time.perf_counter() - started
        doc = json.loads(Path(f"{tmp}/out/forecast.json").read_text())
    verdict = "MET" if elapsed <= args.target_s else "MISSED"
    print(
        f"twin forecast: {doc['open_reports']:,} open reports, {args.hours:g} h, "
        f"{args.replications} replications, all Jakarta: {elapsed:.1f} s "
        f"(target <= {args.target_s:g} s: {verdict})"
    )
    return 0 if elapsed <= args.target_s else 1


def issue_drive_credentials(database_url: str, codes: list[str]) -> Any:
    """Channel keys (jaki, qlue) and a coordinator and an officer for each kelurahan."""
    from intake.db import make_engine
    from intake.store import create_api_key, create_officer
    from loadtest.drive import Credentials

    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            cred = Credentials(
                create_api_key(conn, channel="jaki"), create_api_key(conn, channel="qlue"), {}, {}
            )
            for code in codes:
                cred.coordinators[code] = create_officer(
                    conn, kelurahan_code=code, role="coordinator"
                )[1]
                cred.officers[code] = create_officer(conn, kelurahan_code=code, role="officer")[1]
    except Exception as exc:  # unreachable or not intake's: one line
        raise TwinError(f"cannot issue credentials in {_public(database_url)}: {exc}") from None
    finally:
        engine.dispose()
    return cred


def cmd_drive(args: argparse.Namespace) -> int:
    """`twin drive`: a twin run played through the real API; intake's KPIs against the twin's."""
    import dataclasses

    from loadtest.drive import Driver, compare_kpis, events, intake_kpis, twin_kpis
    from twin.city.assembly import load_city
    from twin.model.runner import run_scenario
    from twin.model.scenario import load_scenario

    if args.speed <= 0:
        raise TwinError(f"--speed must be > 0, got {args.speed:g}")
    scenario = load_scenario(args.scenario)
    hours = args.hours or scenario.run.days * 24.0
    days = max(1, int(np.ceil(hours / 24)))
    run = dataclasses.replace(
        scenario.run, days=days, warm_up_days=0, follow_up_days=0,
        seed=scenario.run.seed if args.seed is None else args.seed,
    )  # fmt: skip
    if args.kelurahan:
        run = dataclasses.replace(run, only_kelurahan=tuple(args.kelurahan.split(",")))
    scenario = dataclasses.replace(scenario, run=run)
    city = load_city(args.data, speeds=scenario.city.speed_settings(), progress=False)
    records = run_scenario(city, scenario).reports
    # intake places a report by its point: the twin's kelurahan is the one intake will find
    located = city.kelurahan.locate_many(records["lon"].to_numpy(), records["lat"].to_numpy())
    records = records[located >= 0].reset_index(drop=True)
    records["kelurahan_code"] = city.kelurahan.codes[located[located >= 0]]
    codes = sorted(set(records["kelurahan_code"]))
    cred = issue_drive_credentials(args.database_url, codes)
    driver = Driver(args.host, records, cred, speed=args.speed, workers=args.threads)
    n_events = len(events(records, hours))
    print(f"driving {n_events:,} requests of {len(records):,} reports over {hours:g} simulated "
          f"hours at {args.speed:g}x: {hours * 3600 / args.speed:.0f} s")  # fmt: skip
    started, ended = driver.run(hours)
    log = driver.log
    intake = intake_kpis(args.host, codes, not_before=ended)
    ends = {code: pd.Timestamp(intake.loc[code, "as_of"]).timestamp() for code in codes}
    horizons = {code: float(intake.loc[code, "mean_horizon_h"]) for code in codes}
    twin = twin_kpis(
        records, started=started, speed=args.speed, ends=ends, horizons=horizons, hours=hours
    )
    table, ok = compare_kpis(intake, twin, speed=args.speed)
    late = np.percentile(log.lateness_s, [50, 99, 100]) if log.lateness_s else [0.0] * 3
    print(f"{log.requests:,} requests, {len(log.failures)} failed; lateness p50 {late[0] * 1000:.0f} ms, "
          f"p99 {late[1] * 1000:.0f} ms, max {late[2] * 1000:.0f} ms (x{args.speed:g} = {late[2] * args.speed / 60:.1f} simulated min)")  # fmt: skip
    for line in log.failures[:5]:
        print(f"  failed: {line}")
    summary = table.groupby("kpi").agg(
        intake=("intake", "mean"), twin=("twin", "mean"), agree=("agree", "mean")
    )
    print("KPIs per kelurahan, simulated hours (mean over kelurahan; share of kelurahan agreeing):")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "kpi_agreement.csv", index=False)
        records.to_csv(out / "twin_records.csv", index=False)
    p99_ms = float(np.percentile(log.response_ms, 99)) if log.response_ms else 0.0
    print(
        f"response time p50 {np.percentile(log.response_ms or [0], 50):.0f} ms, p99 {p99_ms:.0f} ms"
    )
    verdict = ok and not log.failures
    print(f"agreement within the tolerance: {'YES' if verdict else 'NO'}")
    limits = getattr(args, "profile_limits", None)  # twin loadtest --profile officer-drive
    if limits is not None:
        failure_ratio = len(log.failures) / max(1, log.requests + len(log.failures))
        reasons = []
        if failure_ratio > limits.max_failure_ratio:
            reasons.append(f"failure ratio {failure_ratio:.2%} > {limits.max_failure_ratio:.0%}")
        if p99_ms > limits.max_p99_ms:
            reasons.append(f"p99 {p99_ms:.0f} ms > {limits.max_p99_ms:.0f} ms")
        reasons += [] if ok else ["intake's KPIs and the twin's disagree"]
        print("PASS" if not reasons else "FAIL: " + "; ".join(reasons))
        verdict = not reasons
    if args.forecast_at is not None:
        clock = DriveClock(
            pd.Timestamp(started, unit="s", tz="UTC").floor("us"),
            pd.Timestamp(scenario.run.start_date, tz=TIMEZONE).tz_convert("UTC"),
            args.speed,
        )
        scores = forecast_accuracy(args, scenario, city, clock, hours)
        if args.out:
            (Path(args.out) / "forecast_accuracy.json").write_text(json.dumps(scores, indent=1))
    return 0 if verdict else 1


def forecast_accuracy(
    args: argparse.Namespace, scenario: Any, city: Any, clock: DriveClock, driven_h: float
) -> dict[str, Any]:
    """A forecast taken at ``--forecast-at`` hours into the drive from intake's database (as it
    stood then, from its history), scored against what the drive did next, beside the naive
    forecast."""
    import sqlalchemy as sa

    from intake.db import make_engine
    from intake.twin_state import period_times
    from twin.experiments.accuracy import score_forecast
    from twin.experiments.forecast import ForecastTask, run_forecast_tasks, summarise
    from twin.model.warm_start import check_records

    at, horizon = args.forecast_at, args.forecast_hours
    if at + horizon > driven_h:
        raise TwinError(
            f"--forecast-at {at:g} + --forecast-hours {horizon:g} is past the drive's {driven_h:g} h"
        )
    as_of = clock.sim_origin + pd.Timedelta(hours=at)
    live = read_live(args.database_url, as_of.isoformat(), horizon, clock)
    check_records(city, scenario, live.records)
    tasks = [
        ForecastTask("a", scenario, live, r, args.data) for r in range(args.forecast_replications)
    ]
    forecast = summarise(run_forecast_tasks(tasks, workers=1), live, city)
    engine = make_engine(args.database_url)
    try:
        with engine.connect() as conn:
            truth = period_times(
                conn,
                since=(clock.wall_origin - pd.Timedelta(seconds=1)).to_pydatetime(),
                as_of=pd.Timestamp.now(tz="UTC").to_pydatetime(),
            )
    except sa.exc.OperationalError as exc:
        raise TwinError(f"cannot read the database {_public(args.database_url)}: {exc}") from None
    finally:
        engine.dispose()
    for col in ("received_at", "coordinated_at", "closed_at"):
        truth[col] = clock.to_sim(truth[col])
    scores = score_forecast(forecast, live, truth)
    b6, back = scores["breaches_6h"], scores["backlog"]
    print(
        f"forecast at {at:g} h for {horizon:g} h ({scores['open_reports']} open reports, "
        f"{args.forecast_replications} replications): 6-h breaches happened {b6['happened']}, "
        f"expected {b6['expected_twin']:.1f} (naive {b6['expected_naive']:.1f}); Brier "
        f"{b6['brier_twin']:.3f} vs naive {b6['brier_naive']:.3f}; backlog MAE "
        f"{back['mae_twin']:.1f} vs naive {back['mae_naive']:.1f}"
    )
    return scores


def add_bench_commands(bench_cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twin bench forecast`."""
    p = bench_cmds.add_parser("forecast", help="a 72-hour forecast from 5,000 open reports")
    p.add_argument("scenario", nargs="?", default=str(DEFAULT_SCENARIO), help="scenario TOML")
    p.add_argument("--open-reports", type=int, default=5000, help="live backlog (5000)")
    p.add_argument("--hours", type=float, default=72.0, help="horizon (72)")
    p.add_argument("--replications", type=int, default=20, help="replications (20)")
    p.add_argument("--target-s", type=float, default=60.0, help="the speed target (60 s)")
    add_data_option(p)
    add_parallel_options(p)
    p.set_defaults(func=cmd_bench_forecast)


def start_forecast_schedule(
    database_url: str, out: Path, *, every_min: float, extra: list[str]
) -> threading.Event:
    """Run `twin forecast` into `out` now and every `every_min` minutes, in a subprocess (off the
    API's request path and out of its processes); returns the event that stops the schedule.

    A failed run (an empty database at start, say) logs its one line and the next one tries
    again; the API keeps serving the last forecast written.
    """
    from intake.bench import twin_command

    stop = threading.Event()
    command = twin_command(
        "forecast", "--database-url", database_url, "--out", str(out), "--replace", "--quiet",
        "--workers", "1", *extra,
    )  # fmt: skip

    def loop() -> None:
        while not stop.is_set():
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                lines = done.stderr.strip().splitlines()
                log.warning(
                    "scheduled forecast failed: %s", lines[-1] if lines else done.returncode
                )
            stop.wait(every_min * 60)

    threading.Thread(target=loop, name="forecast-schedule", daemon=True).start()
    return stop


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``forecast`` and ``drive``."""
    d = commands.add_parser("drive", help="play a twin run through the real API, compare KPIs")
    d.add_argument("scenario", help="scenario TOML")
    d.add_argument("--host", required=True, help="base URL of a running intake API")
    d.add_argument(
        "--database-url", required=True, help="its database (credentials are issued there)"
    )
    d.add_argument("--speed", type=float, default=600.0, help="simulated seconds per second (600)")
    d.add_argument("--hours", type=float, help="simulated hours to drive (default: the run's days)")
    d.add_argument("--kelurahan", help="comma-separated kelurahan codes (default: every one)")
    d.add_argument("--seed", type=int, help="seed (default: the scenario's)")
    d.add_argument("--threads", type=int, default=4, help="requests in flight (4)")
    d.add_argument("--out", metavar="DIR", help="write kpi_agreement.csv and twin_records.csv")
    d.add_argument(
        "--forecast-at", type=float, metavar="HOURS",
        help="score a forecast taken this many simulated hours into the drive",
    )  # fmt: skip
    d.add_argument("--forecast-hours", type=float, default=24.0, help="its horizon (24)")
    d.add_argument("--forecast-replications", type=int, default=10, help="its replications")
    add_data_option(d)
    d.set_defaults(func=cmd_drive)

    p = commands.add_parser(
        "forecast", help="forecast SLA breaches from intake's live database (a warm-started twin)"
    )
    p.add_argument("scenario", nargs="?", default=str(DEFAULT_SCENARIO), help="scenario TOML")
    p.add_argument("--database-url", required=True, help="intake's database (SQLite or PostgreSQL)")
    p.add_argument(
        "--as-of", help="the moment to start from (ISO; naive = Jakarta time; default now)"
    )
    p.add_argument(
        "--hours", type=float, default=72.0, help="horizon in hours (<= 720; default 72)"
    )
    p.add_argument("--replications", type=int, default=20, help="replications (default 20)")
    p.add_argument("--seed", type=int, help="base seed (default: the scenario's)")
    p.add_argument("--compare", metavar="SCENARIO_B", help="a what-if from the same state (CRN)")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports_out/forecast-...)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument(
        "--replace", action="store_true", help="write into --out whatever it holds (the schedule)"
    )
    p.add_argument("--quiet", action="store_true", help="print nothing")
    add_data_option(p)
    add_parallel_options(p)
    p.set_defaults(func=cmd_forecast)
