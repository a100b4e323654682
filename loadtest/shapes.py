"""Locust load shapes of the four profiles (numbers and thresholds in `loadtest.profiles`).

- `SmokeShape`: constant users for the run (CI).
- `DailyProfileShape` (``typical-day``): the twin's hour-of-day profile (``demand.hourly_profile``
  of the scenario) compressed into the run, so the load test and the twin share one demand curve.
- `FloodSurgeShape` (``flood-surge``): a third at peak / multiplier, a third at the peak (the
  twin's ``demand.flood.multiplier``, 3 by default), a third back at the baseline. During the
  surge the citizens draw that share of their reports from the twin's flood extras, which come
  from flood-prone kelurahan (see `loadtest.locustfile`).
- `RampShape` (``ramp``): adds users every `RAMP_STEP_S` seconds; after each step it reads the
  step's requests, failures and 99th percentile from the runner's statistics, and stops at the
  first step that crosses the profile's thresholds, writing ``ramp.json`` (the steps and the
  breaking point) into the run folder.

Every shape reads ``--users`` (peak users) and ``--run-time`` (``use_common_options``), and
stops by itself at the end of the run.
"""

from locust import LoadTestShape

import json
import os
import time
from pathlib import Path
from typing import Any, ClassVar

from loadtest import profiles
from loadtest.options import DEFAULT_SCENARIO
from loadtest.profiles import PROFILES, RAMP_STEP_S, SPAWN_RATE, Profile


def scenario_path() -> Path:
    """The scenario whose demand drives the load (``LOADTEST_SCENARIO``)."""
    return Path(os.environ.get("LOADTEST_SCENARIO") or DEFAULT_SCENARIO)


def hourly_profile() -> list[float]:
    """The scenario's 24 relative hourly rates of reports."""
    from twin.model.scenario import load_scenario

    return [float(x) for x in load_scenario(scenario_path()).demand.hourly_profile]


def surge_multiplier() -> float:
    """The surge multiple: ``LOADTEST_SURGE_MULTIPLIER``, else the scenario's flood multiplier."""
    if os.environ.get("LOADTEST_SURGE_MULTIPLIER"):
        return float(os.environ["LOADTEST_SURGE_MULTIPLIER"])
    from twin.model.scenario import load_scenario

    m = load_scenario(scenario_path()).demand.flood.multiplier
    return m if m > 1 else profiles.SURGE_MULTIPLIER


class ProfileShape(LoadTestShape):
    """Common part: the profile, its duration and peak users from the command line."""

    abstract = True
    use_common_options = True
    profile: ClassVar[Profile]

    def settings(self) -> tuple[float, int]:
        """(duration s, peak users): ``--run-time`` and ``--users``, else the profile's."""
        options = self.runner.environment.parsed_options if self.runner else None
        duration = float(getattr(options, "run_time", 0) or self.profile.duration_s)
        users = int(getattr(options, "num_users", 0) or self.profile.users)
        return duration, users


class SmokeShape(ProfileShape):
    """Constant users for the whole (short) run."""

    profile = PROFILES["smoke"]

    def tick(self) -> tuple[int, float] | None:
        duration, users = self.settings()
        if self.get_run_time() >= duration:
            return None
        return users, SPAWN_RATE


class DailyProfileShape(ProfileShape):
    """The twin's 24 hourly rates compressed into the run: users = peak x rate / max rate."""

    profile = PROFILES["typical-day"]
    _hourly: list[float] | None = None

    def tick(self) -> tuple[int, float] | None:
        duration, users = self.settings()
        t = self.get_run_time()
        if t >= duration:
            return None
        if self._hourly is None:
            self._hourly = hourly_profile()
        return profiles.daily_users(t, duration, users, self._hourly), SPAWN_RATE


class FloodSurgeShape(ProfileShape):
    """Baseline, a surge of the set multiple, baseline again (thirds of the run)."""

    profile = PROFILES["flood-surge"]
    _multiplier: float | None = None

    def tick(self) -> tuple[int, float] | None:
        duration, users = self.settings()
        t = self.get_run_time()
        if t >= duration:
            return None
        if self._multiplier is None:
            self._multiplier = surge_multiplier()
        return profiles.surge_users(t, duration, users, self._multiplier), SPAWN_RATE


class RampShape(ProfileShape):
    """Step users up until a step breaks the thresholds; record the breaking point."""

    profile = PROFILES["ramp"]

    def __init__(self) -> None:
        super().__init__()
        self.step = -1
        self.steps: list[dict[str, Any]] = []
        self.snapshot: tuple[float, int, int, dict[int, int]] | None = None
        self.done = False

    def _take_snapshot(self) -> tuple[float, int, int, dict[int, int]]:
        total = self.runner.stats.total  # type: ignore[union-attr]
        return time.monotonic(), total.num_requests, total.num_failures, dict(total.response_times)

    def _close_step(self, users: int) -> str | None:
        """Measure the step that just ended; why it broke the thresholds, or None."""
        now = self._take_snapshot()
        if self.snapshot is None:
            self.snapshot = now
            return None
        t0, r0, f0, h0 = self.snapshot
        t1, r1, f1, h1 = now
        self.snapshot = now
        requests, failures = r1 - r0, f1 - f0
        p99 = profiles.percentile(profiles.histogram_delta(h1, h0), 0.99)
        broken = profiles.step_broken(self.profile, requests, failures, p99)
        self.steps.append(
            {
                "step": self.step,
                "users": users,
                "requests": requests,
                "failures": failures,
                "rps": round(requests / max(t1 - t0, 1e-9), 1),
                "p50_ms": profiles.percentile(profiles.histogram_delta(h1, h0), 0.50),
                "p99_ms": p99,
                "broken": broken,
            }
        )
        return broken

    def _finish(self, reason: str) -> None:
        if self.done:
            return
        self.done = True
        held = [s for s in self.steps if not s["broken"]]
        broke = next((s for s in self.steps if s["broken"]), None)
        result = {
            "reason": reason,
            "step_s": RAMP_STEP_S,
            "steps": self.steps,
            "breaking_point": None
            if broke is None
            else {
                "users": broke["users"],
                "rps": broke["rps"],
                "p99_ms": broke["p99_ms"],
                "failure_ratio": round(broke["failures"] / max(broke["requests"], 1), 4),
                "why": broke["broken"],
                "last_good": held[-1] if held else None,
            },
        }
        folder = os.environ.get("LOADTEST_RUN_DIR")
        if folder:
            Path(folder, "ramp.json").write_text(json.dumps(result, indent=2), encoding="utf-8")

    def tick(self) -> tuple[int, float] | None:
        duration, max_users = self.settings()
        if self.done:
            return None
        t = self.get_run_time()
        increment = profiles.ramp_step_users(max_users)
        step = int(t // RAMP_STEP_S)
        if step != self.step:
            users_before = min(max_users, increment * (self.step + 1))
            broken = self._close_step(users_before) if self.step >= 0 else None
            if self.step < 0:
                self.snapshot = self._take_snapshot()
            if broken:
                self._finish(f"step of {users_before} users broke: {broken}")
                return None
            self.step = step
        if t >= duration:
            self._finish("run time over without breaking")
            return None
        return min(max_users, increment * (self.step + 1)), SPAWN_RATE


SHAPES: dict[str, type[ProfileShape]] = {
    "smoke": SmokeShape,
    "typical-day": DailyProfileShape,
    "flood-surge": FloodSurgeShape,
    "ramp": RampShape,
}
