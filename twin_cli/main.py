"""The `twin` command: the composition root of the three faces (model, intake service, load tests).

Only this package imports all three; `twin` knows nothing of the service or the load tests.
Every `TwinError` (a missing file, a malformed scenario, a bad coordinate) becomes one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from twin.errors import TwinError
from twin.reports.folders import settle_output_dirs
from twin_cli import experiments, live, loadtest, service, simulation

if TYPE_CHECKING:
    from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `twin` subcommand."""
    parser = argparse.ArgumentParser(
        prog="twin", description="Digital twin of Jakarta's citizen-complaint handling."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    simulation.add_commands(commands)
    experiments.add_commands(commands)
    service.add_commands(commands)
    live.add_commands(commands)
    bench = commands.add_parser("bench", help="shipped benchmarks against the speed targets")
    bench_cmds = bench.add_subparsers(dest="bench_command", required=True, metavar="TARGET")
    experiments.add_bench_commands(bench_cmds)
    simulation.add_bench_commands(bench_cmds)
    service.add_bench_commands(bench_cmds)
    live.add_bench_commands(bench_cmds)
    loadtest.add_commands(commands)
    return parser


def console() -> None:
    """The `twin` console script (and ``python -m twin_cli``): `main`, then exit.

    SIGTERM ends the command as Ctrl-C does, through its clean-up (a folder being replaced is
    put back), with exit code 143.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main(exit_at_once=True))


def main(argv: Sequence[str] | None = None, *, exit_at_once: bool = False) -> int:
    """Run one `twin` command and return its exit code.

    With `exit_at_once`, a command that opts in (``skip_teardown``: `twin run`) ends the process
    as soon as it is done, streams flushed: a year's run leaves the city and millions of small
    objects behind, and freeing them one by one at interpreter exit took 0.8 s, a third of the
    run's time outside its simulation. Its files are closed and its workers stopped by then.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    args.started_at = datetime.now(UTC)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the provenance records
    succeeded = False
    try:
        code = int(args.func(args))
        succeeded = True
    except TwinError as exc:
        print(f"twin: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("twin: interrupted", file=sys.stderr)
        return 130
    finally:  # a failed command leaves no partial folder and loses no earlier result
        settle_output_dirs(succeeded=succeeded)
    if exit_at_once and getattr(args, "skip_teardown", False):
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    return code


if __name__ == "__main__":
    console()
