"""Locust load tests of the intake API, driven by the twin's demand model, with a zero-loss audit.

Two sides, one process boundary between them:

- **The runner side** (plain Python, imported by `twin loadtest` and the tests): `options`
  (what a run was asked for), `profiles` (shapes and thresholds), `payloads` (report bodies from
  the demand model), `server` (the API process, its credentials and database schema),
  `locust_run` (Locust as subprocesses, the API killed on cue), `audit` (the ledgers against the
  database), `results` (Locust's CSV files, the plot, the verdict, ``summary.json``) and `runner`
  (one whole run, in that order).
- **The Locust side** (runs only in Locust's own processes): `locustfile` (the simulated users),
  `users` (their pacing and retries), `runstate` (what a Locust process shares: pool,
  credentials, ledger) and `shapes` (the profiles' load shapes). ``import locust``
  monkey-patches gevent, so nothing on the runner side imports these.

The public names below are imported on first use (PEP 562), not with the package: Locust's
processes import the package too, and ``python -m loadtest.runner`` must not find its module
imported already.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadtest.audit import StoredRow, read_ledger, read_stored, reaudit
    from loadtest.locust_run import Kill, RunRecord, locust_commands, run_locust
    from loadtest.options import LoadTestOptions, validated_profile
    from loadtest.profiles import PROFILES, Profile
    from loadtest.results import (
        build_summary,
        format_summary,
        history,
        locust_stats,
        plot_run,
        report_mix,
        verdict,
        write_outputs,
    )
    from loadtest.runner import run_loadtest
    from loadtest.server import (
        Server,
        drop_postgres_schema,
        fresh_postgres_schema,
        issue_credentials,
        migrate_database,
        warm_up,
    )

# `audit` itself stays `loadtest.audit.audit`: the package's attribute `audit` is that module.
_HOMES = {
    "profiles": ["PROFILES", "Profile"],
    "options": ["LoadTestOptions", "validated_profile"],
    "server": ["Server", "drop_postgres_schema", "fresh_postgres_schema", "issue_credentials",
               "migrate_database", "warm_up"],
    "locust_run": ["Kill", "RunRecord", "locust_commands", "run_locust"],
    "audit": ["StoredRow", "read_ledger", "read_stored", "reaudit"],
    "results": ["build_summary", "format_summary", "history", "locust_stats", "plot_run",
                "report_mix", "verdict", "write_outputs"],
    "runner": ["run_loadtest"],
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

# the same names, spelled out for linters and `from loadtest import *`
__all__ = [
    "PROFILES",
    "Kill",
    "LoadTestOptions",
    "Profile",
    "RunRecord",
    "Server",
    "StoredRow",
    "build_summary",
    "drop_postgres_schema",
    "format_summary",
    "fresh_postgres_schema",
    "history",
    "issue_credentials",
    "locust_commands",
    "locust_stats",
    "migrate_database",
    "plot_run",
    "read_ledger",
    "read_stored",
    "reaudit",
    "report_mix",
    "run_loadtest",
    "run_locust",
    "validated_profile",
    "verdict",
    "warm_up",
    "write_outputs",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from the module that defines it on first use."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'loadtest' has no attribute {name!r}")
    return getattr(importlib.import_module(f"loadtest.{_MODULE_OF[name]}"), name)
