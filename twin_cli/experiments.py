"""The planners' commands: `twin run --replications`, `twin compare`, `twin sweep`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

from twin.city.datadir import PROJECT_ROOT
from twin.reports.study_report import number
from twin_cli.common import add_data_option, add_parallel_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from twin.experiments.replications import Runner


def make_runner(args: argparse.Namespace) -> Runner:
    """A `Runner` with a tqdm bar over every replication of the study."""
    from tqdm import tqdm

    from twin.errors import ScenarioError
    from twin.experiments.replications import Runner

    if args.workers is not None and args.workers < 1:
        raise ScenarioError(f"--workers must be >= 1, got {args.workers}")

    def progress(total: int) -> Callable[[int], object]:
        bar = tqdm(
            total=total, desc="replications", unit="run", disable=getattr(args, "quiet", False)
        )
        return bar.update

    return Runner(
        data_dir=args.data, workers=args.workers, dask_address=args.dask, progress=progress
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80]


def cmd_replicate(args: argparse.Namespace) -> int:
    """`twin run SCENARIO --replications R`."""
    from twin.experiments.variants import with_days
    from twin.model.scenario import load_scenario
    from twin.reports.studies import replicate

    scenario = with_days(load_scenario(args.scenario), args.days)
    if args.seed is not None:
        import dataclasses

        scenario = dataclasses.replace(
            scenario, run=dataclasses.replace(scenario.run, seed=args.seed)
        )
    out = (
        Path(args.out)
        if args.out
        else PROJECT_ROOT
        / "reports_out"
        / f"{scenario.name}-{scenario.run.seed}-r{args.replications}"
    )
    result = replicate(scenario, args.replications, make_runner(args), out)
    table = result["summary"][["mean", "ci_low", "ci_high"]]
    print(
        f"{scenario.name}: {args.replications} replications of {scenario.run.days} days (95 % CI)"
    )
    print(table.to_string(float_format=lambda v: f"{number(v):>10}"))
    for name, met in result["verdicts"].items():
        print(f"  target {name:<26} {'MET' if met else 'missed'}")
    print(f"\nwrote {out}/: summary_ci.csv, replications.csv, ranking_robustness.csv, report.html")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """`twin compare A.toml B.toml ... --replications R`."""
    from twin.experiments.variants import with_days
    from twin.model.scenario import load_scenario
    from twin.reports.studies import compare

    scenarios = [
        with_days(load_scenario(p), args.days) for p in args.scenarios
    ]  # all checked first
    thresholds = parse_thresholds(args.threshold)
    names = "-vs-".join(s.name for s in scenarios)
    out = Path(args.out) if args.out else PROJECT_ROOT / "reports_out" / _slug(f"compare-{names}")
    result = compare(scenarios, args.replications, make_runner(args), out, thresholds)
    print(result["verdicts"].to_string(float_format=number))
    for name, diff in result["differences"].items():
        print(f"\n{name} minus {scenarios[0].name} (95 % CI, practical threshold, verdict):")
        shown = diff[["difference", "ci_low", "ci_high", "threshold", "verdict"]]
        print(shown.to_string(float_format=number))
    print(result["conclusion"])
    print(f"\nwrote {out}/: verdicts.csv, difference_*.csv, compare.png, report.html")
    return 0


def parse_thresholds(items: list[str] | None) -> dict[str, float]:
    """``--threshold KPI=VALUE`` options as a dict (unknown KPIs are refused by `compare`)."""
    from twin.errors import ScenarioError
    from twin.experiments.statistics import practical_thresholds

    out: dict[str, float] = {}
    for item in items or []:
        kpi, sep, value = item.partition("=")
        try:
            out[kpi.strip()] = float(value)
        except ValueError:
            raise ScenarioError(
                f"--threshold {item!r}: expected KPI=NUMBER, e.g. mean_resolution_h=0.5"
            ) from None
        if not sep:
            raise ScenarioError(f"--threshold {item!r}: expected KPI=NUMBER")
    practical_thresholds(out)
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    """`twin sweep SWEEP.toml`."""
    from twin.city.assembly import load_city
    from twin.experiments.sweep import load_sweep
    from twin.reports.studies import run_sweep

    sweep = load_sweep(Path(args.sweep), days=args.days)  # refuses a bad grid before any run
    out = (
        Path(args.out) if args.out else PROJECT_ROOT / "reports_out" / f"sweep-{_slug(sweep.name)}"
    )
    city = load_city(args.data, speeds=sweep.scenario.city.speed_settings(), progress=True)
    print(
        f"sweep {sweep.name}: {len(sweep.points)} grid points x {sweep.replications} replications"
    )
    result = run_sweep(sweep, make_runner(args), out, city=city)
    cols = [*sweep.grid, "mean_resolution_h", "mean_coordination_h", "share_resolved_within_7d"]
    print(result["table"][cols].to_string(index=False, float_format=number))
    print(f"\nwrote {out}/: sweep.csv, minimum_staffing.csv, staffing_curve.png, report.html")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """`twin validate`: published against simulated for every period; non-zero when one misses."""
    from twin.experiments.validation import PUBLISHED, validate
    from twin.reports.study_report import plot_validation, write_html

    periods = args.periods or list(PUBLISHED)
    folder = Path(args.scenarios) if args.scenarios else None
    table = validate(periods, args.replications, make_runner(args), days=args.days, folder=folder)
    out = Path(args.out) if args.out else PROJECT_ROOT / "reports_out" / "validation"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "validation.csv", index=False)
    plot = plot_validation(table, out / "validation.png")
    write_html(out / "report.html", "Validation against published outcomes",
               [("Published against simulated (mean, 95 % CI)", table), ("Plot", plot)],
               note=f"{args.replications} replications per period.")  # fmt: skip
    shown = table[
        ["period", "kpi", "published", "simulated", "ci_low", "ci_high", "tolerance", "pass"]
    ]
    print(shown.to_string(index=False, float_format=number))
    missed = int((~table["pass"]).sum())
    print(f"\n{len(table) - missed} of {len(table)} published KPIs within tolerance; wrote {out}/")
    return 0 if missed == 0 else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    """`twin calibrate SCENARIO`: fit the unpublished parameters; write <name>-calibrated.toml."""
    from twin.experiments.validation import calibrate, write_calibrated

    source = Path(args.scenario)
    fit = calibrate(source, args.replications, make_runner(args), days=args.days)
    path = write_calibrated(source.stem, fit["best"], fit["table"], source.parent)
    print(fit["table"].head(5).to_string(index=False, float_format=number))
    print(f"\nbest: {fit['best']} (loss {fit['loss']:.2f}); wrote {path}")
    return 0


def cmd_bench_experiments(args: argparse.Namespace) -> int:
    """`twin bench experiments`: 30 replications of a month, sequential against the pool."""
    import json

    from twin.bench import REPLICATION_TARGETS, bench_replications, format_bench

    results = bench_replications(
        args.data, replications=args.replications, days=args.days, workers=args.workers
    )
    print(
        json.dumps(results, indent=2) if args.json else format_bench(results, REPLICATION_TARGETS)
    )
    if not args.json:
        print(
            f"{results['replications']} replications x {results['days']} days; sequential "
            f"{results['sequential_s']:.1f} s, {results['workers']} processes {results['parallel_s']:.1f} s; "
            f"identical results: {results['identical_results']}"
        )
    return 0


def add_bench_commands(bench_cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twin bench experiments`."""
    bench = bench_cmds.add_parser(
        "experiments", help="30 replications of a month: one process vs the pool"
    )
    bench.add_argument("--replications", type=int, default=30, help="replications (default 30)")
    bench.add_argument("--days", type=int, default=30, help="simulated days each (default 30)")
    bench.add_argument("--workers", type=int, help="pool processes (default: one per CPU)")
    bench.add_argument("--json", action="store_true", help="print JSON")
    add_data_option(bench)
    bench.set_defaults(func=cmd_bench_experiments)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twin compare` and `twin sweep`."""
    compare = commands.add_parser(
        "compare", help="paired comparison of scenarios with confidence intervals"
    )
    compare.add_argument(
        "scenarios", nargs="+", help="two or more scenario TOML files (the first is the baseline)"
    )
    compare.add_argument(
        "--replications", type=int, default=10, help="replications per scenario (default 10)"
    )
    compare.add_argument(
        "--days", type=int, help="simulated days (default: each scenario's run.days)"
    )
    compare.add_argument(
        "--out", metavar="DIR", help="output folder (default reports_out/compare-...)"
    )
    compare.add_argument(
        "--threshold",
        action="append",
        metavar="KPI=VALUE",
        help="practical threshold of a KPI (default 0.5 h for times, 0.01 for shares); repeatable",
    )
    add_parallel_options(compare)
    add_data_option(compare)
    compare.set_defaults(func=cmd_compare)

    sweep = commands.add_parser(
        "sweep", help="a grid over scenario fields: staffing curve and minimum staffing"
    )
    sweep.add_argument("sweep", help="sweep TOML file (see scenarios/README.md)")
    sweep.add_argument("--days", type=int, help="simulated days (overrides the sweep file)")
    sweep.add_argument(
        "--out", metavar="DIR", help="output folder (default reports_out/sweep-<name>/)"
    )
    add_parallel_options(sweep)
    add_data_option(sweep)
    sweep.set_defaults(func=cmd_sweep)

    validate = commands.add_parser(
        "validate", help="published KPIs against the twin; exit 1 when one misses"
    )
    validate.add_argument(
        "periods", nargs="*", help="jakarta-2016, jakarta-2020, jakarta-2024 (default all)"
    )
    validate.add_argument(
        "--replications", type=int, default=5, help="replications per period (default 5)"
    )
    validate.add_argument(
        "--days", type=int, help="measured days of every period (rates are compared per day)"
    )
    validate.add_argument(
        "--out", metavar="DIR", help="output folder (default reports_out/validation/)"
    )
    validate.add_argument(
        "--scenarios",
        metavar="DIR",
        help="folder of the period scenarios (default: the shipped scenarios/)",
    )
    add_parallel_options(validate)
    add_data_option(validate)
    validate.set_defaults(func=cmd_validate)

    calibrate = commands.add_parser(
        "calibrate", help="fit a period's unpublished parameters to its published KPIs"
    )
    calibrate.add_argument(
        "scenario", help="a period scenario: scenarios/jakarta-2016.toml, -2020 or -2024"
    )
    calibrate.add_argument(
        "--replications", type=int, default=3, help="replications per grid point (default 3)"
    )
    calibrate.add_argument("--days", type=int, help="shorten the period while fitting")
    add_parallel_options(calibrate)
    add_data_option(calibrate)
    calibrate.set_defaults(func=cmd_calibrate)
