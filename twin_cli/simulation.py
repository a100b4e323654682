"""The model's own commands: `twin city`, `twin run`, `twin bench city|sim|run`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin.city.datadir import output_root
from twin.errors import ScenarioError
from twin.reports.folders import claim_output_dir, slug
from twin_cli.common import add_data_option, add_parallel_options

if TYPE_CHECKING:
    from twin.city.assembly import City
    from twin.model.runner import RunResult
    from twin.model.scenario import Scenario
    from twin.reports.run_plots import FigureWorker


def _cmd_city_info(args: argparse.Namespace) -> int:
    from twin.city.assembly import load_city
    from twin.city.info import city_summary, format_summary

    info = city_summary(load_city(args.data, road_file=args.roads, progress=not args.json))
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    return 0


def _cmd_city_map(args: argparse.Namespace) -> int:
    from twin.city.assembly import load_city
    from twin.city.maps import draw_city_map

    out = draw_city_map(load_city(args.data, road_file=args.roads, progress=True), Path(args.out))
    print(f"wrote {out}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    if args.replay:
        return _cmd_replay(args)
    if args.scenario is None:
        raise ScenarioError("twin run: name a scenario file, or --replay a summary.json")
    if args.replications is not None and args.replications != 1:
        from twin_cli.experiments import cmd_replicate

        return cmd_replicate(args)
    from twin.model.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    days = args.days if args.days is not None else scenario.run.days
    seed = args.seed if args.seed is not None else scenario.run.seed
    if days < 1:
        raise ScenarioError(f"--days must be >= 1, got {days}")
    try:  # the run's checks (length, seed, demand that fits in memory) before any folder is made
        dataclasses.replace(scenario, run=dataclasses.replace(scenario.run, days=days, seed=seed))
    except ScenarioError as exc:
        raise ScenarioError(f"{exc} (with --days {days} --seed {seed})") from None
    default = output_root() / slug(f"{scenario.name}-seed{seed}-{days}d")
    inputs = [Path(args.scenario)] + [
        Path(t) for t in (scenario.coordination.staff_table, scenario.crews.staff_table) if t
    ]
    out = claim_output_dir(
        Path(args.out) if args.out else default, overwrite=args.overwrite, inputs=inputs
    )
    _simulate_and_write(args, scenario, out, seed=seed, days=days, replication=0)
    return 0


def _simulate_and_write(
    args: argparse.Namespace,
    scenario: Scenario,
    out: Path,
    *,
    seed: int,
    days: int,
    replication: int,
) -> dict[str, Any]:
    """Run `scenario` and write its outputs; the figure worker warms up during the simulation."""
    from twin.city.assembly import load_city
    from twin.reports.run_plots import FigureWorker

    city = load_city(args.data, speeds=scenario.city.speed_settings(), progress=True)
    with FigureWorker(city.table[~city.is_seribu]) as figures:
        result = _simulate(args, city, scenario, seed=seed, days=days, replication=replication)
        return _write(args, result, city, out, figures)


def _simulate(
    args: argparse.Namespace,
    city: City,
    scenario: Scenario,
    *,
    seed: int,
    days: int,
    replication: int,
) -> RunResult:
    from tqdm import tqdm

    from twin.model.runner import run_scenario

    simulated = days + scenario.run.warm_up_days + scenario.run.follow_up_days
    with tqdm(
        total=simulated, desc=f"simulating {scenario.name}", unit="day", disable=args.quiet
    ) as bar:
        result = run_scenario(
            city, scenario, seed=seed, days=days, replication=replication, progress=bar.update
        )
    return result


def _write(
    args: argparse.Namespace, result: RunResult, city: City, out: Path, figures: FigureWorker
) -> dict[str, Any]:
    from twin.model.payroll import staff_cost
    from twin.reports.formatting import idr
    from twin.reports.provenance import collect
    from twin.reports.run_files import format_summary, write_run

    record = collect(
        [result.scenario], data_dir=city.paths.root, started_at=args.started_at, argv=args.argv
    )
    cost = staff_cost(city, result.scenario)
    result.summary["staff_cost"] = cost.as_dict()  # written into summary.json with the KPIs
    written = write_run(result, city, out, provenance=record, figures=figures)
    drawn = [p for p in written if p.suffix == ".png"]
    print(format_summary(result.summary))
    print(
        f"  staff cost per month: {idr(cost.total_idr)} ({cost.desk_officers:,} desk officers, "
        f"{cost.agency_teams:,} agency teams, {cost.ppsu_crews:,} PPSU crews)"
    )
    print(
        f"\nwrote {out}/: summary.json, reports.parquet, kelurahan.csv, "
        f"{len(drawn)} PNG plots and report.html"
    )
    return record


def _cmd_replay(args: argparse.Namespace) -> int:
    """Rerun the run a summary.json records, and check the records come out byte-identical."""
    from twin.reports.provenance import read_run_record, version_differences

    if args.scenario is not None or args.seed is not None or args.days is not None:
        raise ScenarioError(
            "--replay takes the scenario, seed and days from the summary; drop them"
        )
    summary_path = Path(args.replay)
    recorded, scenario = read_run_record(summary_path)
    for note in version_differences(recorded):
        print(f"twin: note: {summary_path}: {note}; the replay may differ", file=sys.stderr)
    default = summary_path.parent.with_name(summary_path.parent.name + "-replay")
    out = claim_output_dir(Path(args.out) if args.out else default, overwrite=args.overwrite)
    record = _simulate_and_write(
        args,
        scenario,
        out,
        seed=scenario.run.seed,
        days=scenario.run.days,
        replication=int(recorded.get("replication", 0)),
    )
    then = recorded.get("outputs", {}).get("reports.parquet")
    now = record["outputs"]["reports.parquet"]
    changed = sorted(
        name
        for name, digest in recorded.get("data", {}).get("files", {}).items()
        if record["data"]["files"].get(name) != digest
    )
    if changed:
        print(f"twin: note: data files differ from the recorded run: {', '.join(changed)}")
    if now == then:
        print(f"replay of {summary_path}: reports.parquet identical (sha256 {now[:16]}...)")
        return 0
    print(f"replay of {summary_path}: reports.parquet DIFFERS (sha256 {then} then, {now} now)")
    return 1


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
            f"{results['reports']:,} reports ({results['ppsu_jobs']:,} PPSU jobs, {results['agency_jobs']:,} "
            f"agency jobs, every stage queueing); bare SimPy loop pushing the same "
            f"{results['resource_requests']:,} resource requests: {results['bare_simpy_s']:.2f} s, "
            f"ratio {results['ratio_to_bare_simpy']:.2f} (CPU time: {results['ratio_to_bare_simpy_cpu']:.2f})"
        )
    return 0


def _cmd_bench_run(args: argparse.Namespace) -> int:
    """Time whole `twin run` processes, outputs included, against their own simulation."""
    import statistics
    import subprocess
    import tempfile
    import time

    from tqdm import tqdm

    from twin.bench import RUN_TARGETS, format_bench
    from twin.city.assembly import load_city
    from twin.city.datadir import SCENARIO_DIR

    scenario = (
        Path(args.scenario) if args.scenario else SCENARIO_DIR / "jakarta-2016-calibrated.toml"
    )
    if not scenario.is_file():
        raise ScenarioError(f"twin bench run: no scenario file {scenario}")
    load_city(args.data, progress=True)  # a cold city cache is not what is being timed
    wholes, simulations = [], []
    for _ in tqdm(range(args.repeat), desc=f"twin run --days {args.days}", unit="run"):
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "twin_cli", "run", str(scenario), "--quiet",
                       "--days", str(args.days), "--out", f"{tmp}/run"]  # fmt: skip
            if args.data:
                command += ["--data", args.data]
            started = time.perf_counter()
            done = subprocess.run(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            wholes.append(time.perf_counter() - started)
            if done.returncode != 0:
                lines = done.stderr.strip().splitlines() or ["no message"]
                print(f"twin bench run: the run failed: {lines[-1]}", file=sys.stderr)
                return 1
            summary = json.loads(Path(tmp, "run", "summary.json").read_text())
            simulations.append(float(summary["runtime_s"]))
    results = {
        "whole_process_s": statistics.median(wholes),
        "simulation_s": statistics.median(simulations),
        "whole_to_simulation": statistics.median(
            w / s for w, s in zip(wholes, simulations, strict=True)
        ),
        "runs": args.repeat,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(format_bench(results, RUN_TARGETS))
    print(
        f"{args.repeat} processes of `twin run {scenario.name} --days {args.days}`: whole process "
        f"(start, city, simulation, records, figures, report) median {results['whole_process_s']:.2f} s, "
        f"its simulation (summary runtime_s) median {results['simulation_s']:.2f} s; ratios per run "
        + ", ".join(f"{w / s:.2f}" for w, s in zip(wholes, simulations, strict=True))
    )
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twin city` and `twin run`."""
    city = commands.add_parser("city", help="the city model: kelurahan, roads, depots")
    city_cmds = city.add_subparsers(dest="city_command", required=True, metavar="SUBCOMMAND")
    info = city_cmds.add_parser("info", help="counts, network size, data gaps, cache status")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    city_map = city_cmds.add_parser("map", help="draw kelurahan, roads and depots to a PNG")
    city_map.add_argument("--out", required=True, metavar="FILE.png", help="output PNG")
    for sub in (info, city_map):
        add_data_option(sub)
        sub.add_argument(
            "--roads",
            type=Path,
            metavar="FILE",
            help="road source instead of the extract (.graphml, .osm)",
        )
    info.set_defaults(func=_cmd_city_info)
    city_map.set_defaults(func=_cmd_city_map)

    run = commands.add_parser("run", help="simulate a scenario and write KPIs, records and plots")
    run.add_argument(
        "scenario",
        nargs="?",
        help="scenario TOML file, e.g. scenarios/jakarta-2016-calibrated.toml",
    )
    run.add_argument(
        "--replay",
        metavar="SUMMARY",
        help="rerun the run a summary.json records (scenario, seed, days) and compare its records",
    )
    run.add_argument(
        "--overwrite", action="store_true", help="replace an existing output folder of twin"
    )
    run.add_argument("--days", type=int, help="simulated days (default: the scenario's run.days)")
    run.add_argument("--seed", type=int, help="random seed (default: the scenario's run.seed)")
    run.add_argument(
        "--out", metavar="DIR", help="output folder (default reports_out/<scenario>-seed<S>-<D>d/)"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--replications",
        type=int,
        metavar="R",
        help="R independent replications: KPI means with 95 %% CIs",
    )
    add_parallel_options(run)
    add_data_option(run)
    run.set_defaults(func=_cmd_run, skip_teardown=True)


def add_bench_commands(bench_cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twin bench city` and `twin bench sim`."""
    bench_city = bench_cmds.add_parser("city", help="city build, load, depot tables, lookups")
    add_data_option(bench_city)
    bench_city.add_argument(
        "--repeat", type=int, default=5, help="repetitions per measure (median)"
    )
    bench_city.add_argument("--no-cold", action="store_true", help="skip the cold build (~25 s)")
    bench_city.add_argument("--json", action="store_true", help="print JSON")
    bench_city.set_defaults(func=_cmd_bench_city)
    bench_sim = bench_cmds.add_parser(
        "sim", help="one simulated year of all Jakarta vs a bare SimPy loop"
    )
    add_data_option(bench_sim)
    bench_sim.add_argument("--days", type=int, default=365, help="simulated days (default 365)")
    bench_sim.add_argument(
        "--reports-per-day", type=float, default=1000.0, help="demand (default 1000)"
    )
    bench_sim.add_argument("--repeat", type=int, default=3, help="repetitions (median)")
    bench_sim.add_argument("--json", action="store_true", help="print JSON")
    bench_sim.set_defaults(func=_cmd_bench_sim)
    bench_run = bench_cmds.add_parser(
        "run", help="a whole `twin run --days 365`, outputs included, against its simulation"
    )
    add_data_option(bench_run)
    bench_run.add_argument(
        "--scenario", help="scenario TOML (default scenarios/jakarta-2016-calibrated.toml)"
    )
    bench_run.add_argument("--days", type=int, default=365, help="simulated days (default 365)")
    bench_run.add_argument("--repeat", type=int, default=3, help="runs (median)")
    bench_run.add_argument("--json", action="store_true", help="print JSON")
    bench_run.set_defaults(func=_cmd_bench_run)
