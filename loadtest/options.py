"""What `twin loadtest` was asked for (`LoadTestOptions`), its defaults, and the checks that turn a
bad option into one readable line (`validated_profile`).

It also fixes where the project lies (`PROJECT_ROOT`): the default scenario, the locustfile and
the run folders are found from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loadtest.profiles import PROFILES, Profile
from twin.city.datadir import SCENARIO_DIR, SOURCE_ROOT
from twin.errors import TwinError

PROJECT_ROOT = SOURCE_ROOT  # the working folder of the processes it starts
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_SCENARIO = SCENARIO_DIR / "jakarta-2016-calibrated.toml"


@dataclass(slots=True)
class LoadTestOptions:
    """Everything `twin loadtest` was asked for.

    Attributes
    ----------
    profile
        ``smoke``, ``typical-day``, ``flood-surge`` or ``ramp`` (`loadtest.profiles.PROFILES`).
    duration_s, users
        Run length and peak users; None: the profile's.
    host
        Base URL of an intake API already running; None: start one on loopback.
    database_url
        The API's database. Without `host`: the database of the API started here (PostgreSQL:
        a fresh schema inside it, dropped afterwards; SQLite: that file). With `host`: where
        credentials are issued and the audit looks (required).
    kills
        SIGKILLs of the API during the run (each followed by a restart).
    workers
        Locust worker processes (0: a single local process).
    seed
        Payload seed; None: the scenario's ``run.seed``.
    out
        Run folder; None: ``reports_out/loadtest-<profile>-<time>``.
    data_dir
        Jakarta data directory (``--data``).
    scenario
        The scenario whose demand drives the load.
    server_workers
        Worker processes of the API started here.
    idempotency
        False only for the negative control: reports are sent without idempotency keys.
    client_timeout_s
        Seconds before a client gives a request up (and retries a report).
    officers
        Officer tokens to issue (one kelurahan each); None: 2 for ``smoke``, else 4.
    """

    profile: str
    duration_s: float | None = None
    users: int | None = None
    host: str | None = None
    database_url: str | None = None
    kills: int = 0
    workers: int = 0
    seed: int | None = None
    out: Path | None = None
    data_dir: str | None = None
    scenario: Path = DEFAULT_SCENARIO
    server_workers: int = 1
    idempotency: bool = True
    client_timeout_s: float = 10.0
    officers: int | None = None


def validated_profile(opts: LoadTestOptions) -> Profile:
    """The profile of `opts`, once every option is checked (TwinError naming the first bad one)."""
    if opts.profile not in PROFILES:
        raise TwinError(f"--profile {opts.profile!r}: choose from {', '.join(PROFILES)}")
    if opts.duration_s is not None and opts.duration_s <= 0:
        raise TwinError(f"--duration must be > 0 seconds, got {opts.duration_s}")
    if opts.users is not None and opts.users < 1:
        raise TwinError(f"--users must be >= 1, got {opts.users}")
    if opts.kills < 0 or opts.workers < 0 or opts.server_workers < 1 or (opts.officers or 1) < 1:
        raise TwinError("--kill and --workers must be >= 0, --server-workers >= 1")
    if opts.client_timeout_s <= 0:
        raise TwinError(f"--client-timeout must be > 0, got {opts.client_timeout_s}")
    if opts.host is not None:
        if opts.kills:
            raise TwinError("--kill needs the API started here: leave out --host")
        if not opts.database_url:
            raise TwinError(
                "--host needs --database-url (the API's database) to issue keys and audit"
            )
    return PROFILES[opts.profile]
