"""The model's own commands: `twin city`, `twin run`, `twin bench city|sim`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from twin.city.datadir import PROJECT_ROOT
from twin.errors import ScenarioError
from twin_cli.common import add_data_option, add_parallel_options


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
    if args.replications is not None and args.replications != 1:
        from twin_cli.experiments import cmd_replicate

        return cmd_replicate(args)
    from tqdm import tqdm

    from twin.city.assembly import load_city
    from twin.model.runner import run_scenario
    from twin.model.scenario import load_scenario
    from twin.reports.run_files import format_summary, plotting_process, write_run

    scenario = load_scenario(args.scenario)
    days = args.days if args.days is not None else scenario.run.days
    seed = args.seed if args.seed is not None else scenario.run.seed
    if days < 1:
        raise ScenarioError(f"--days must be >= 1, got {days}")
    city = load_city(args.data, speeds=scenario.city.speed_settings(), progress=True)
    with plotting_process() as plotter:
        with tqdm(
            total=days, desc=f"simulating {scenario.name}", unit="day", disable=args.quiet
        ) as bar:
            result = run_scenario(city, scenario, seed=seed, days=days, progress=bar.update)
        out = (
            Path(args.out) if args.out else PROJECT_ROOT / "reports_out" / f"{scenario.name}-{seed}"
        )
        written = write_run(result, city, out, plotter=plotter)
    print(format_summary(result.summary))
    plots = sum(1 for p in written if p.suffix == ".png")
    print(f"\nwrote {out}/: summary.json, reports.parquet, kelurahan.csv and {plots} PNG plots")
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
            f"{results['reports']:,} reports ({results['ppsu_jobs']:,} PPSU jobs, {results['agency_jobs']:,} "
            f"agency jobs, every stage queueing); bare SimPy loop pushing the same "
            f"{results['resource_requests']:,} resource requests: {results['bare_simpy_s']:.2f} s, "
            f"ratio {results['ratio_to_bare_simpy']:.2f}"
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
    add_data_option(run)
    run.set_defaults(func=_cmd_run)


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
