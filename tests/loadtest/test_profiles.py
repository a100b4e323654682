"""The arithmetic of the load shapes and the payload sampling (no Locust imported)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from loadtest import payloads, profiles
from loadtest.profiles import PROFILES
from twin.model.parameters import DEFAULT_HOURLY

ROOT = Path(__file__).resolve().parent.parent.parent


def test_typical_day_follows_the_twins_hourly_profile() -> None:
    duration, peak = 240.0, 60
    users = [profiles.daily_users(h * 10 + 5, duration, peak, DEFAULT_HOURLY) for h in range(24)]
    busiest = max(range(24), key=lambda h: DEFAULT_HOURLY[h])
    assert users[busiest] == peak
    assert min(users) >= 1
    for h in range(24):
        assert (
            abs(users[h] - peak * DEFAULT_HOURLY[h] / max(DEFAULT_HOURLY)) <= 0.5 + 1e-9
            or users[h] == 1
        )
    assert profiles.hour_of(duration, duration) == 23


def test_flood_surge_is_the_middle_third_at_the_multiple() -> None:
    assert profiles.surge_users(10, 90, 120, 3.0) == 40
    assert profiles.surge_users(30, 90, 120, 3.0) == 120
    assert profiles.surge_users(59.9, 90, 120, 3.0) == 120
    assert profiles.surge_users(60, 90, 120, 3.0) == 40
    assert profiles.flood_share(3.0) == 2 / 3
    assert profiles.flood_share(1.0) == 0.0


def test_percentiles_of_a_locust_histogram() -> None:
    histogram = {5: 50, 10: 40, 100: 9, 1000: 1}
    assert profiles.percentile(histogram, 0.5) == 5
    assert profiles.percentile(histogram, 0.9) == 10
    assert profiles.percentile(histogram, 0.99) == 100
    assert profiles.percentile(histogram, 1.0) == 1000
    assert profiles.percentile({}, 0.99) == 0.0
    later = {5: 60, 10: 40, 100: 9, 1000: 3}
    assert profiles.histogram_delta(later, histogram) == {5: 10, 1000: 2}


def test_a_ramp_step_breaks_on_failures_or_latency() -> None:
    ramp = PROFILES["ramp"]
    assert profiles.step_broken(ramp, 1000, 0, 100.0) is None
    assert "failure ratio" in str(profiles.step_broken(ramp, 1000, 50, 100.0))
    assert "p99" in str(profiles.step_broken(ramp, 1000, 0, ramp.max_p99_ms + 1))
    assert profiles.step_broken(ramp, 0, 0, 0.0) is not None
    assert profiles.ramp_step_users(400) == 20


def test_routes_follow_the_channel_mix() -> None:
    shares = payloads.route_shares({"jaki": 0.76, "qlue": 0.09, "twitter": 0.07, "sms": 0.08})
    assert abs(sum(shares.values()) - 1) < 1e-12
    expected = {"app": 0.76, "operator": 0.15, "open311": 0.09}
    assert shares.keys() == expected.keys()
    assert all(abs(shares[k] - v) < 1e-12 for k, v in expected.items())


def test_the_pool_samples_by_route_and_flood_with_a_seed() -> None:
    pool = payloads.PayloadPool(
        [
            {"route": "app", "flood": False, "kelurahan": "A"},
            {"route": "app", "flood": True, "kelurahan": "B"},
            {"route": "open311", "flood": False, "kelurahan": "A"},
        ]
    )
    rng = random.Random(1)
    assert {pool.sample(rng, "app") for _ in range(50)} == {0}
    assert {pool.sample(rng, "app", flood=True) for _ in range(50)} == {1}
    assert {pool.sample(rng, "open311", flood=True) for _ in range(50)} == {2}  # no flood extra
    a = [pool.sample(payloads.user_rng(7, 0, 3), "app", flood=f) for f in (False, True)]
    b = [pool.sample(payloads.user_rng(7, 0, 3), "app", flood=f) for f in (False, True)]
    assert a == b
    assert payloads.user_rng(7, 1, 0).random() != payloads.user_rng(7, 0, 0).random()


def test_locust_stays_out_of_twin_and_intake() -> None:
    """`import locust` monkey-patches gevent: only the Locust side of `loadtest` may."""
    for folder in ("twin", "intake"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "import locust" not in text, path
            assert "from locust" not in text, path
    code = (
        "import sys, twin_cli.main, loadtest, loadtest.options, loadtest.payloads, loadtest.server, "
        "loadtest.locust_run, loadtest.audit, loadtest.results, loadtest.runner; "
        "twin_cli.main.build_parser(); assert 'locust' not in sys.modules and 'gevent' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_the_cli_offers_every_profile() -> None:
    from twin_cli.main import build_parser

    parser = build_parser()
    for name in PROFILES:
        args = parser.parse_args(["loadtest", "--profile", name, "--kill", "1", "--workers", "2"])
        assert (args.profile, args.kill, args.workers) == (name, 1, 2)


def test_the_package_exports_each_public_name_from_its_module() -> None:
    import importlib

    import loadtest

    assert sorted(loadtest.__all__) == sorted(loadtest._MODULE_OF)
    for name, module in loadtest._MODULE_OF.items():
        home = importlib.import_module(f"loadtest.{module}")
        assert getattr(loadtest, name) is getattr(home, name), name
