"""Options shared by many commands."""

from __future__ import annotations

import argparse


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """``--data DIR``: the Jakarta data directory."""
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="Jakarta data directory (default: $TWIN_DATA_DIR, else data/jakarta in the project)",
    )


def add_parallel_options(parser: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--dask``: where replications run."""
    parser.add_argument("--workers", type=int, help="local processes (default: one per CPU)")
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a Dask cluster instead (e.g. tcp://scheduler:8786)",
    )
