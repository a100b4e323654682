"""The load profiles and their thresholds: one table, and the arithmetic of their shapes.

Plain Python without Locust, so that `twin loadtest`, the tests and Locust's shape classes
(`loadtest.shapes`) share one definition.

=============  ==========  =====  ===============  ===========  ===========================
profile        duration s  users  failure ratio <=  p99 ms <=    shape
=============  ==========  =====  ===============  ===========  ===========================
smoke          10          10     1 %              2000         constant users (CI)
typical-day    120         60     1 %              500          the twin's 24 hourly rates
flood-surge    90          120    1 %              1000         baseline, x3 surge, baseline
ramp           240         400    1 % (a step)     500 (a step)  +20 users every 10 s until broken
=============  ==========  =====  ===============  ===========  ===========================

``users`` is the peak number of simulated users (``--users``); ``duration`` is ``--duration``.
Every user starts its requests as a Poisson process (citizens about one report a second; see
`loadtest.locustfile`): a user makes about 1.2 requests per second on average. ``typical-day`` peaks at 60
users in the busiest hour (its mean hour is about 40); ``flood-surge`` runs that mean hour (40 =
120 / 3) and surges to three times it, the twin's flood-day multiplier.
The failure ratio counts every failed request except, in runs with ``--kill``, connection errors
(refused, reset, timed out while the server is down and restarting): those are the chaos itself,
and the citizens retry them with the same idempotency key. Every profile, ramp included, also
requires the zero-loss audit: lost = 0, duplicates = 0, unexpected = 0, wrong kelurahan = 0.
Smoke's p99 allows for the restart of its kill: the first reports after a restart wait for the
API's cold start (its spatial index is built on the first located report, about 1.3 s).
For ``ramp`` the thresholds apply to each 10-second step: the first step that crosses one is the
breaking point, and the run stops there; the run's exit code then depends on the audit alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Profile:
    """One load profile.

    Attributes
    ----------
    name
        As given to ``--profile``.
    description
        One line.
    duration_s
        Default run length (``--duration``).
    users
        Default peak number of users (``--users``); for ``ramp`` the most it steps up to.
    max_failure_ratio
        Largest accepted share of failed requests (for ``ramp``: of one step).
    max_p99_ms
        Largest accepted 99th percentile of the response time over all endpoints, milliseconds
        (for ``ramp``: of one step).
    """

    name: str
    description: str
    duration_s: float
    users: int
    max_failure_ratio: float
    max_p99_ms: float


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", "short constant load for CI", 10.0, 10, 0.01, 2000.0),
        Profile("typical-day", "the twin's daily profile compressed in time", 120.0, 60, 0.01, 500.0),
        Profile("flood-surge", "a surge in flood-prone kelurahan", 90.0, 120, 0.01, 1000.0),
        Profile("ramp", "steps up until failures or latency cross a threshold", 240.0, 400, 0.01, 500.0),
    )
}  # fmt: skip

# The server a profile starts gets report limits far above any profile's rate: every simulated
# citizen posts from 127.0.0.1 with one channel key, which the default per-address limit
# (50/second) would throttle, and a load test measures the service, not the limiter (which
# still counts). Failed authentication keeps its default: no profile sends wrong credentials.
SERVER_RATES = {
    "INTAKE_RATE_REPORTS_KEY": "100000/second",
    "INTAKE_RATE_REPORTS_ADDRESS": "100000/second",
}

RAMP_STEP_S = 10.0  # length of one ramp step
RAMP_STEPS = 20  # users / RAMP_STEPS users are added per step
SURGE_MULTIPLIER = 3.0  # default: the twin's demand.flood.multiplier overrides it
SPAWN_RATE = 100.0  # users started per second when a shape changes the count


def hour_of(t_s: float, duration_s: float) -> int:
    """The simulated hour (0-23) at `t_s` seconds into a day compressed into `duration_s`."""
    return min(23, max(0, int(t_s / duration_s * 24)))


def daily_users(t_s: float, duration_s: float, peak_users: int, hourly: Sequence[float]) -> int:
    """Users of ``typical-day`` at `t_s`: the peak scaled by the hour's relative rate (>= 1)."""
    rate = hourly[hour_of(t_s, duration_s)] / max(hourly)
    return max(1, round(peak_users * rate))


def in_surge(t_s: float, duration_s: float) -> bool:
    """Whether `t_s` lies in the surge of ``flood-surge`` (the middle third of the run)."""
    return duration_s / 3 <= t_s < 2 * duration_s / 3


def surge_users(t_s: float, duration_s: float, peak_users: int, multiplier: float) -> int:
    """Users of ``flood-surge``: peak / multiplier, then the peak during the surge (>= 1)."""
    if in_surge(t_s, duration_s):
        return peak_users
    return max(1, round(peak_users / multiplier))


def flood_share(multiplier: float) -> float:
    """Share of reports that are flood extras during a surge: the twin's (m - 1) / m."""
    return (multiplier - 1) / multiplier if multiplier > 1 else 0.0


def ramp_step_users(max_users: int) -> int:
    """Users added at each ramp step (and the first step's users)."""
    return max(1, math.ceil(max_users / RAMP_STEPS))


def percentile(histogram: Mapping[int, int], q: float) -> float:
    """The `q` quantile (0-1) of Locust's response-time histogram (rounded ms -> count).

    Returns
    -------
    ms
        The smallest recorded time with at least a share `q` of the requests at or below it;
        0 for an empty histogram.
    """
    total = sum(histogram.values())
    if total == 0:
        return 0.0
    need = q * total
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= need:
            return float(ms)
    return float(max(histogram))


def histogram_delta(now: Mapping[int, int], before: Mapping[int, int]) -> dict[int, int]:
    """Requests recorded between two snapshots of a cumulative histogram."""
    return {ms: n - before.get(ms, 0) for ms, n in now.items() if n - before.get(ms, 0) > 0}


def step_broken(profile: Profile, requests: int, failures: int, p99_ms: float) -> str | None:
    """Why a ramp step broke the profile's thresholds, or None if it held."""
    if requests == 0:
        return "no request completed in the step"
    ratio = failures / requests
    if ratio > profile.max_failure_ratio:
        return f"failure ratio {ratio:.2%} > {profile.max_failure_ratio:.0%}"
    if p99_ms > profile.max_p99_ms:
        return f"p99 {p99_ms:.0f} ms > {profile.max_p99_ms:.0f} ms"
    return None
