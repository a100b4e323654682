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
    an earlier result there is refused unless ``--overwrite``. Claim it only once every input
    is checked (should the study still fail, `twin_cli.main` removes the folder and puts back
    the result it was to replace)."""
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
    from twin.experiments.replications import check_replications
    from twin.experiments.variants import check_staff_tables, with_days
    from twin.model.scenario import load_scenario
    from twin.reports.studies import replicate

    scenario = with_days(load_scenario(args.scenario), args.days)
    if args.seed is not None:
        import dataclasses

        scenario = dataclasses.replace(
            scenario, run=dataclasses.replace(scenario.run, seed=args.seed)
        )
    check_replications(args.replications)
    check_staff_tables([scenario], args.data)
    runner = make_runner(args)
    default = f"{scenario.name}-seed{scenario.run.seed}-{scenario.run.days}d-r{args.replications}"
    out = _output_dir(args, default)
    result = replicate(scenario, args.replications, runner, out)
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
    from twin.errors import ScenarioError
    from twin.experiments.replications import check_replications
    from twin.experiments.variants import check_staff_tables, with_days
    from twin.model.scenario import load_scenario
    from twin.reports.studies import compare

    scenarios = [
        with_days(load_scenario(p), args.days) for p in args.scenarios
    ]  # all checked first
    thresholds = parse_thresholds(args.threshold)
    check_replications(args.replications)
    if len(scenarios) < 2:
        raise ScenarioError("twin compare needs at least two scenario files")
    if len({s.name for s in scenarios}) < len(scenarios):
        raise ScenarioError(
            f"scenario names must differ to be compared: {', '.join(s.name for s in scenarios)}"
        )
    check_staff_tables(scenarios, args.data)
    runner = make_runner(args)
    names = "-vs-".join(s.name for s in scenarios)
    days = "-".join(sorted({f"{s.run.days}d" for s in scenarios}))
    out = _output_dir(args, f"compare-{names}-{days}-r{args.replications}")
    result = compare(scenarios, args.replications, runner, out, thresholds)
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
    from twin.errors import ScenarioError
    from twin.experiments.sweep import load_sweep
    from twin.experiments.variants import check_staff_tables
    from twin.reports.studies import run_sweep

    sweep = load_sweep(Path(args.sweep), days=args.days)  # refuses a bad grid before any run
    try:  # every grid point's staff tables against the city's kelurahan, before any run
        check_staff_tables(sweep.scenarios(), args.data)
    except ScenarioError as exc:
        raise ScenarioError(f"{args.sweep}: {exc}") from None
    runner = make_runner(args)
    default = f"sweep-{sweep.name}-{sweep.scenario.run.days}d-r{sweep.replications}"
    out = _output_dir(args, default)
    print(
        f"sweep {sweep.name}: {len(sweep.points)} grid points x {sweep.replications} replications"
    )
    result = run_sweep(sweep, runner, out)
    _record(args, out, [sweep.scenario])
    cols = [*sweep.grid, "mean_resolution_h", "mean_coordination_h", "share_resolved_within_7d"]
    print(result["table"][cols].to_string(index=False, float_format=number))
    print(f"\nwrote {out}/: sweep.csv, minimum_staffing.csv, staffing_curve.png, report.html")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """`twin validate`: every period's published figures against the twin, fitted and predicted;
    non-zero when a fitted (in-sample) figure misses its tolerance, or with ``--strict`` when a
    predicted one falls outside its interval."""
    from twin.errors import ScenarioError
    from twin.experiments.validation import periods_folder, prepare, run_validation, verdict
    from twin.reports.checks import write_validation_report

    if args.assumptions is not None:
        raise ScenarioError(
            "--assumptions: twin validate uses no parameter ranges (it draws the parameters from "
            "each fitted period's posterior); the option is for twin calibrate and twin sensitivity"
        )
    periods = periods_folder(Path(args.periods_dir) if args.periods_dir else None)
    chosen = args.periods or list(periods)
    unknown = [p for p in chosen if p not in periods]
    if unknown:
        raise TwinError(f"no period file for {unknown[0]}; choose from {', '.join(periods)}")
    # every period, draw, scenario and staff table checked before any folder or run
    prepared = prepare(periods, chosen, args.replications, days=args.days, data_dir=args.data)
    runner = make_runner(args)
    length = f"{args.days}d" if args.days else "full"
    out = _output_dir(args, f"validation-{'-'.join(chosen)}-{length}-r{args.replications}")
    table = run_validation(prepared, runner)
    _record(args, out, [periods[p].base_scenario(args.days) for p in chosen])
    table.to_csv(out / "validation.csv", index=False)
    write_validation_report(table, args.replications, out)
    shown = table[["period", "check", "kpi", "role", "published", "simulated", "pi_low",
                   "pi_high", "tolerance", "pass", "in_interval"]]  # fmt: skip
    print(shown.to_string(index=False, float_format=number))
    v = verdict(table)
    print(
        f"\nin-sample: {v['in_sample_pass']} of {v['in_sample']} fitted figures and volumes within "
        f"tolerance; predicted: {v['predicted_inside']} of {v['predicted']} published values "
        f"inside the 95 % predictive interval; wrote {out}/"
    )
    failed = v["in_sample_pass"] < v["in_sample"] or (
        args.strict and v["predicted_inside"] < v["predicted"]
    )
    return 1 if failed else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """`twin calibrate PERIOD`: ABC-SMC of the period's assumed parameters; writes the report
    (accepted draws, ranges, trade-offs) and a calibrated scenario pointing to it."""
    from twin.city.datadir import SCENARIO_DIR
    from twin.experiments.assumptions import load_assumptions
    from twin.experiments.inference import calibrate_abc, calibration_ranges, marginals, trade_offs
    from twin.experiments.periods import load_period
    from twin.experiments.validation import PERIOD_DIR
    from twin.experiments.variants import check_days, check_staff_tables
    from twin.reports.calibration_report import write_calibrated, write_calibration_report

    given = Path(args.period)
    if given.suffix == ".toml":
        period = load_period(given)
    else:
        folder = Path(args.periods_dir) if args.periods_dir else PERIOD_DIR
        period = load_period(folder / f"{args.period}.toml")
    if not period.fit:
        raise TwinError(f"{period.path}: fit = false: this period is never used for fitting")
    if args.days is not None:
        check_days(args.days, "--days")
    days = args.days or period.calibration_days
    path = Path(args.assumptions) if args.assumptions else SCENARIO_DIR / "assumptions.toml"
    base = period.base_scenario(days)
    ranges = calibration_ranges(period, load_assumptions(path, base))
    check_staff_tables([base], args.data)
    stamp = args.started_at.strftime("%Y%m%d-%H%M%S")
    out = (
        Path(args.out)
        if args.out
        else output_root() / "calibration" / f"{period.name}-calibrated-{stamp}.toml"
    )
    if out.exists() and not args.overwrite:
        raise TwinError(f"{out}: exists; pass --overwrite to replace it, or choose another --out")
    report = out.with_suffix("")
    report = report.with_name(report.name + "-report")
    report.mkdir(parents=True, exist_ok=True)
    print(
        f"calibrating {period.name}: {', '.join(period.calibrate)} (ABC-SMC, {days or period.days} days)"
    )
    fit = calibrate_abc(
        period, ranges, report / "abc.db", population=args.population,
        max_simulations=args.max_simulations, generations=args.generations,
        replications=args.replications, days=days, workers=args.workers,
        dask_address=args.dask, data_dir=args.data, seed=args.seed,
    )  # fmt: skip
    table, pairs = marginals(fit, ranges), trade_offs(fit)
    write_calibration_report(fit, table, pairs, report)
    path = write_calibrated(period, fit.chosen(), report, out)
    print(fit.generations.to_string(index=False, float_format=number))
    print(table.to_string(index=False, float_format=number))
    print(pairs.to_string(index=False, float_format=number))
    print(
        f"\n{fit.simulations} runs in {fit.seconds:.0f} s; final tolerance {fit.epsilon:.2f} x the "
        f"published ones; {len(fit.consistent)} of {len(fit.population)} accepted draws within "
        f"every published tolerance (effective sample size {fit.effective_size:.1f})"
    )
    print(f"wrote {path} (the closest accepted draw) and {report}/ (posterior.csv, report.html)")
    if not args.out:
        print(f"to use it: copy it to scenarios/{period.name}-calibrated.toml and posterior.csv "
              f"to the period's posterior file")  # fmt: skip
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """`twin sensitivity SCENARIO`: Morris screening of the assumed parameters."""
    from twin.city.datadir import SCENARIO_DIR
    from twin.errors import ScenarioError
    from twin.experiments.assumptions import load_assumptions
    from twin.experiments.replications import check_replications
    from twin.experiments.sensitivity import morris
    from twin.experiments.variants import check_staff_tables, with_days
    from twin.model.scenario import load_scenario
    from twin.reports.checks import write_sensitivity_report

    scenario = with_days(load_scenario(args.scenario), args.days)
    path = Path(args.assumptions) if args.assumptions else SCENARIO_DIR / "assumptions.toml"
    assumptions = load_assumptions(path, scenario)  # every range checked before any run
    if args.trajectories < 2:
        raise ScenarioError(f"--trajectories must be >= 2, got {args.trajectories}")
    if args.replications < 1:
        raise ScenarioError(f"--replications must be >= 1, got {args.replications}")
    if args.replications > 1:
        check_replications(args.replications)
    check_staff_tables([scenario], args.data)
    runner = make_runner(args)
    default = f"sensitivity-{scenario.name}-{scenario.run.days}d-t{args.trajectories}"
    out = _output_dir(args, default)
    result = morris(
        scenario, assumptions, runner, trajectories=args.trajectories,
        replications=args.replications, seed=scenario.run.seed,
    )  # fmt: skip
    result["indices"].to_csv(out / "morris_indices.csv", index=False)
    result["ranking"].to_csv(out / "ranking.csv")
    result["samples"].to_csv(out / "samples.csv", index=False)
    write_sensitivity_report(result, scenario.name, scenario.run.days, args.trajectories, out)
    _record(args, out, [scenario])
    ranked = result["ranking"].join(
        result["indices"].pivot(index="parameter", columns="kpi", values="rank")
    )
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
    from twin.experiments.variants import check_staff_tables, with_days
    from twin.model.scenario import load_scenario
    from twin.reports.allocation_report import write_allocation

    budget = parse_budget(args.budget)  # every option checked before any run
    targets = check_targets(args.target)
    for name in ("replications", "rounds"):
        if getattr(args, name) < (2 if name == "replications" else 0):
            raise ScenarioError(f"--{name} must be >= {2 if name == 'replications' else 0}")
    scenario = with_days(load_scenario(args.scenario), args.days)
    check_staff_tables([scenario], args.data)
    runner = make_runner(args)
    city = load_city(args.data, speeds=scenario.city.speed_settings(), progress=not args.quiet)
    search = Search(scenario, budget, targets, replications=args.replications, rounds=args.rounds)
    started = time.perf_counter()
    out = _output_dir(args, f"allocate-{scenario.name}-{args.budget}-{scenario.run.days}d")
    outcome = run_search(search, city, runner, out / "tables")
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
        "validate",
        help="published KPIs against the twin, fitted and predicted; exit 1 when a fitted one misses",
    )
    validate.add_argument(
        "periods", nargs="*", help="period names, e.g. jakarta-2016 (default: every period file)"
    )
    validate.add_argument(
        "--replications", type=int, default=20,
        help="runs per period and check, each a draw of the calibrated parameters (default 20)",
    )  # fmt: skip
    validate.add_argument(
        "--days", type=int,
        help="measured days of every period, >= 1 (default: each period's whole length; rates "
        "are compared per day)",
    )  # fmt: skip
    validate.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default reports_out/validation-<periods>-<days>-r<R>/)",
    )
    validate.add_argument(
        "--periods", dest="periods_dir", metavar="DIR",
        help="folder of period files (default scenarios/periods/)",
    )  # fmt: skip
    validate.add_argument(  # refused with a line saying why: validation reads no ranges
        "--assumptions", metavar="FILE", help=argparse.SUPPRESS
    )
    validate.add_argument(
        "--strict", action="store_true",
        help="also exit 1 when a predicted published value is outside its interval",
    )  # fmt: skip
    add_parallel_options(validate)
    add_data_option(validate)
    validate.set_defaults(func=cmd_validate)

    calibrate = commands.add_parser(
        "calibrate", help="which values of a period's assumed parameters fit its published KPIs"
    )
    calibrate.add_argument(
        "period", help="a period name (jakarta-2016) or period file (scenarios/periods/*.toml)"
    )
    calibrate.add_argument(
        "--population", type=int, default=30, help="accepted draws per generation (default 30)"
    )
    calibrate.add_argument(
        "--max-simulations",
        type=int,
        default=400,
        help="stop after about this many runs (default 400)",
    )
    calibrate.add_argument(
        "--generations", type=int, default=8, help="at most this many generations (default 8)"
    )
    calibrate.add_argument(
        "--replications", type=int, default=1,
        help="replications averaged per draw, the same for every draw (default 1)",
    )  # fmt: skip
    calibrate.add_argument("--seed", type=int, default=0, help="seed of the ABC proposals")
    calibrate.add_argument(
        "--days",
        type=int,
        help="measured days while fitting (default: the period's calibration_days)",
    )
    calibrate.add_argument(
        "--periods", dest="periods_dir", metavar="DIR", help="folder of period files"
    )
    calibrate.add_argument(
        "--assumptions",
        metavar="FILE",
        help="parameter ranges (default scenarios/assumptions.toml)",
    )
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
    for sub in (compare, sweep, validate, sensitivity, allocate):  # the studies of make_runner
        sub.add_argument("--quiet", action="store_true", help="no progress bars")
