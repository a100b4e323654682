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

from twin.errors import TwinError

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
    print(json.dumps(info, indent=2) if args.json else format_summary(info))  # noqa: T201
    return 0


def _cmd_city_map(args: argparse.Namespace) -> int:
    from twin.city import load_city
    from twin.citymap import draw_city_map

    out = draw_city_map(load_city(args.data, road_file=args.roads, progress=True), Path(args.out))
    print(f"wrote {out}")  # noqa: T201
    return 0


def _cmd_bench_city(args: argparse.Namespace) -> int:
    from twin.bench import CITY_TARGETS, bench_city, format_bench

    results = bench_city(args.data, repeat=args.repeat, cold=not args.no_cold)
    print(json.dumps(results, indent=2) if args.json else format_bench(results, CITY_TARGETS))  # noqa: T201
    return 0


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

    bench = commands.add_parser("bench", help="shipped benchmarks against the speed targets")
    bench_cmds = bench.add_subparsers(dest="bench_command", required=True, metavar="TARGET")
    bench_city = bench_cmds.add_parser("city", help="city build, load, depot tables, lookups")
    _add_data_option(bench_city)
    bench_city.add_argument(
        "--repeat", type=int, default=5, help="repetitions per measure (median)"
    )
    bench_city.add_argument("--no-cold", action="store_true", help="skip the cold build (~25 s)")
    bench_city.add_argument("--json", action="store_true", help="print JSON")
    bench_city.set_defaults(func=_cmd_bench_city)
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
        print(f"twin: error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        print("twin: interrupted", file=sys.stderr)  # noqa: T201
        return 130


if __name__ == "__main__":
    sys.exit(main())
