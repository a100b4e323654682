"""The planners' commands: `twin run --replications`, `twin compare`, `twin sweep`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from twin.city.datadir import output_root
from twin.errors import TwinError
from twin_cli.common import add_data_option, add_parallel_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from twin.experiments.replications import Runner
    from twin.model.scenario import Scenario


def number(value: float) -> str:
    """`twin.reports.study_report.number`, imported when a study prints: `twin run` then starts
    without the studies' imports (scipy.stats among them)."""
    from twin.reports.study_report import number as formatted

    return formatted(value)


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


def _output_dir(args: argparse.Namespace, default: str) -> Path:
    """The study's folder: ``--out``, else one under reports_out/ named by its parameters;
    an earlier result there is refused unless ``--overwrite``."""
    from twin.reports.folders import claim_output_dir, slug

    out = Path(args.out) if args.out else output_root() / slug(default)
    return claim_output_dir(out, overwrite=args.overwrite)


def _record(args: argparse.Namespace, out: Path, scenarios: list[Scenario]) -> None:
    """Write the study's provenance.json (and print nothing: the study already said where)."""
    import json

    from twin.city.datadir import resolve_data_dir
    from twin.reports.provenance import collect

    record = collect(
        scenarios,
        data_dir=resolve_data_dir(args.data).root,
        started_at=args.started_at,
        argv=args.argv,
    )
    record["replications"] = getattr(args, "replications", None)
    (out / "provenance.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


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
    default = f"{scenario.name}-seed{scenario.run.seed}-{scenario.run.days}d-r{args.replications}"
    out = _output_dir(args, default)
    result = replicate(scenario, args.replications, make_runner(args), out)
    _record(args, out, [scenario])
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
    days = "-".join(sorted({f"{s.run.days}d" for s in scenarios}))
    out = _output_dir(args, f"compare-{names}-{days}-r{args.replications}")
    result = compare(scenarios, args.replications, make_runner(args), out, thresholds)
    _record(args, out, scenarios)
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
    from twin.experiments.sweep import load_sweep
    from twin.reports.studies import run_sweep

    sweep = load_sweep(Path(args.sweep), days=args.days)  # refuses a bad grid before any run
    out = _output_dir(args, f"sweep-{sweep.name}-{sweep.scenario.run.days}d-r{sweep.replications}")
    print(
        f"sweep {sweep.name}: {len(sweep.points)} grid points x {sweep.replications} replications"
    )
    result = run_sweep(sweep, make_runner(args), out)
    _record(args, out, [sweep.scenario])
    cols = [*sweep.grid, "mean_resolution_h", "mean_coordination_h", "share_resolved_within_7d"]
    print(result["table"][cols].to_string(index=False, float_format=number))
    print(f"\nwrote {out}/: sweep.csv, minimum_staffing.csv, staffing_curve.png, report.html")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """`twin validate`: published against simulated for every period; non-zero when one misses."""
    from twin.experiments.validation import PUBLISHED, period_scenario, validate
    from twin.reports.checks import write_validation_report

    periods = args.periods or list(PUBLISHED)
    folder = Path(args.scenarios) if args.scenarios else None
    length = f"{args.days}d" if args.days else "full"
    out = _output_dir(args, f"validation-{'-'.join(periods)}-{length}-r{args.replications}")
    table = validate(periods, args.replications, make_runner(args), days=args.days, folder=folder)
    _record(args, out, [period_scenario(p, args.days, folder=folder) for p in periods])
    table.to_csv(out / "validation.csv", index=False)
    write_validation_report(table, args.replications, out)
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
    stamp = args.started_at.strftime("%Y%m%d-%H%M%S")
    out = (
        Path(args.out)
        if args.out
        else output_root() / "calibration" / f"{source.stem}-calibrated-{stamp}.toml"
    )
    if out.exists() and not args.overwrite:
        raise TwinError(f"{out}: exists; pass --overwrite to replace it, or choose another --out")
    fit = calibrate(source, args.replications, make_runner(args), days=args.days)
    path = write_calibrated(source, fit["best"], fit["table"], out)
    print(fit["table"].head(5).to_string(index=False, float_format=number))
    print(f"\nbest: {fit['best']} (loss {fit['loss']:.2f})")
    print(f"wrote {path} and its fit {path.with_suffix('.csv').name}")
    if not args.out:
        print(
            f"to use it for validation, copy it to {source.parent / (source.stem + '-calibrated.toml')}"
        )
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """`twin sensitivity SCENARIO`: Morris screening of the assumed parameters."""
    from twin.city.datadir import SCENARIO_DIR
    from twin.experiments.assumptions import load_assumptions
    from twin.experiments.sensitivity import morris
    from twin.experiments.variants import with_days
    from twin.model.scenario import load_scenario
    from twin.reports.checks import write_sensitivity_report

    scenario = with_days(load_scenario(args.scenario), args.days)
    path = Path(args.assumptions) if args.assumptions else SCENARIO_DIR / "assumptions.toml"
    assumptions = load_assumptions(path, scenario)  # every range checked before any run
    out = _output_dir(
        args, f"sensitivity-{scenario.name}-{scenario.run.days}d-t{args.trajectories}"
    )
    result = morris(
        scenario, assumptions, make_runner(args), trajectories=args.trajectories,
        replications=args.replications, seed=scenario.run.seed,
    )  # fmt: skip
    result["indices"].to_csv(out / "morris_indices.csv", index=False)
    result["ranking"].to_csv(out / "ranking.csv")
    result["samples"].to_csv(out / "samples.csv", index=False)
    write_sensitivity_report(result, scenario.name, scenario.run.days, args.trajectories, out)
    ranked = result["ranking"].join(
        result["indices"].pivot(index="parameter", columns="kpi", values="rank")
    )
    _record(args, out, [scenario])
    print(ranked.to_string(float_format=number))
    print(
        f"\n{result['runs']} runs; wrote {out}/: morris_indices.csv, ranking.csv, sensitivity.png, report.html"
    )
    return 0


def cmd_allocate(args: argparse.Namespace) -> int:
    """`twin allocate SCENARIO --budget N|IDR`: staff spread to meet the targets at least cost."""
    import time

    from twin.city.assembly import load_city
    from twin.errors import ScenarioError
    from twin.experiments.allocate import Search, run_search
    from twin.experiments.allocation import check_targets, parse_budget
    from twin.experiments.variants import with_days
    from twin.model.scenario import load_scenario
    from twin.reports.allocation_report import write_allocation

    budget = parse_budget(args.budget)  # every option checked before any run
    targets = check_targets(args.target)
    for name in ("replications", "rounds"):
        if getattr(args, name) < (2 if name == "replications" else 0):
            raise ScenarioError(f"--{name} must be >= {2 if name == 'replications' else 0}")
    scenario = with_days(load_scenario(args.scenario), args.days)
    out = _output_dir(args, f"allocate-{scenario.name}-{args.budget}-{scenario.run.days}d")
    city = load_city(args.data, speeds=scenario.city.speed_settings(), progress=True)
    search = Search(scenario, budget, targets, replications=args.replications, rounds=args.rounds)
    started = time.perf_counter()
    outcome = run_search(search, city, make_runner(args), out / "tables")
    result = write_allocation(
        outcome, search, city.table[~city.is_seribu], city.kelurahan.codes, out
    )
    _record(args, out, [scenario])
    print(result["kpis"].to_string(index=False, float_format=number))
    for line in result["executive"]:
        print(line)
    print(
        f"\n{time.perf_counter() - started:.0f} s; wrote {out}/: allocation.csv, teams.csv, kpis.csv, allocation_map.png, report.html"
    )
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
        "--out",
        metavar="DIR",
        help="output folder (default reports_out/compare-<names>-<days>-r<R>/)",
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
        "--out", metavar="DIR", help="output folder (default reports_out/sweep-<name>-<days>-r<R>/)"
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
        "--out",
        metavar="DIR",
        help="output folder (default reports_out/validation-<periods>-<days>-r<R>/)",
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
    calibrate.add_argument(
        "--out",
        metavar="FILE",
        help="calibrated scenario to write (default: a new file under reports_out/calibration/)",
    )
    calibrate.set_defaults(func=cmd_calibrate)
    sensitivity = commands.add_parser(
        "sensitivity", help="which assumed parameters move the KPIs (Morris screening, SALib)"
    )
    sensitivity.add_argument("scenario", help="scenario TOML file")
    sensitivity.add_argument(
        "--assumptions",
        metavar="FILE",
        help="parameter ranges (default scenarios/assumptions.toml)",
    )
    sensitivity.add_argument(
        "--trajectories", type=int, default=10, help="Morris trajectories (default 10)"
    )
    sensitivity.add_argument(
        "--replications", type=int, default=1, help="replications per point (default 1)"
    )
    sensitivity.add_argument("--days", type=int, help="simulated days (default the scenario's)")
    sensitivity.add_argument("--out", metavar="DIR", help="output folder")
    add_parallel_options(sensitivity)
    add_data_option(sensitivity)
    sensitivity.set_defaults(func=cmd_sensitivity)
    allocate = commands.add_parser(
        "allocate", help="spread staff under a budget to meet the targets at least cost"
    )
    allocate.add_argument("scenario", help="scenario TOML file (today's staffing)")
    allocate.add_argument(
        "--budget", required=True,
        help="staff positions (desk officers + PPSU crews + agency teams, e.g. 2500) or IDR a month (e.g. 10.5bn IDR)",
    )  # fmt: skip
    allocate.add_argument(
        "--target", action="append",
        help="coordination_mean_6h, resolution_mean_7d or benchmark_resolution_9h (repeatable; default the first two)",
    )  # fmt: skip
    allocate.add_argument("--replications", type=int, default=3, help="replications per evaluation (default 3)")  # fmt: skip
    allocate.add_argument("--rounds", type=int, default=4, help="greedy rounds on the simulation (default 4)")  # fmt: skip
    allocate.add_argument("--days", type=int, help="measured days (default the scenario's)")
    allocate.add_argument("--out", metavar="DIR", help="output folder")
    add_parallel_options(allocate)
    add_data_option(allocate)
    allocate.set_defaults(func=cmd_allocate)
    for sub in (compare, sweep, validate, calibrate, sensitivity, allocate):
        sub.add_argument(
            "--overwrite", action="store_true", help="replace an earlier result at the output"
        )
