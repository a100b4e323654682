"""Locust users of the intake API: citizens, third-party apps, trackers, officers, dashboards.

Run through ``twin loadtest`` (which prepares the run folder, starts the API and audits the
database afterwards), or by hand against a running API once a run folder exists::

    LOADTEST_RUN_DIR=reports_out/loadtest-smoke-... locust -f loadtest/locustfile.py \\
        --config loadtest/locust.conf --host http://127.0.0.1:8000 -u 5 -r 5 -t 10s

Settings come from environment variables (the same on the master and on every worker):

``LOADTEST_RUN_DIR`` (required)
    The run folder: ``payloads.jsonl`` (bodies from the twin's demand model),
    ``credentials.json`` (channel keys, officer tokens); each process appends its ledger
    ``ledger-<host>-<pid>.jsonl`` there.
``LOADTEST_PROFILE``
    ``smoke``, ``typical-day``, ``flood-surge`` or ``ramp``: the load shape; unset: plain
    ``-u/-r/-t``.
``LOADTEST_RUN_TAG``, ``LOADTEST_SEED``
    Prefix of every idempotency key (unique per run) and the payload seed.
``LOADTEST_DURATION``, ``LOADTEST_SURGE_MULTIPLIER``
    For ``flood-surge``: the run length (the surge is its middle third) and the multiple.
``LOADTEST_CLIENT_TIMEOUT``
    Seconds before a request is given up (and, for a report, retried); default 10.
``LOADTEST_NO_IDEMPOTENCY=1``
    Negative control only: reports are sent without an idempotency key, so a retry after a
    lost response stores the report twice, and the audit must say so.

Every report carries its idempotency key in its description (``[lt KEY]``), so the audit can
count the stored copies of each report without trusting the server's idempotency table.
"""

from locust import FastHttpUser, events, task
from locust.runners import MasterRunner, WorkerRunner

import io
import itertools
import json
import os
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

import gevent

from loadtest import payloads, profiles, shapes
from loadtest.payloads import APP, OPEN311, OPERATOR

CLAIMABLE = ("menunggu", "koordinasi", "disposisi")
RETRY_STATUSES = (0, 409, 429, 500, 502, 503, 504)  # 0: no HTTP answer (refused, reset, timeout)
CLIENT_TIMEOUT_S = float(os.environ.get("LOADTEST_CLIENT_TIMEOUT") or 10.0)


def _route_shares() -> dict[str, float]:
    """Route shares of the scenario's channel mix (the class and task weights below)."""
    from twin.scenario import load_scenario

    return payloads.scenario_route_shares(load_scenario(shapes.scenario_path()))


SHARES = _route_shares()
REPORTING_USERS = 70  # of every 100 users: citizens and apps reporting, by the channel mix
WEIGHTS = {
    "Citizen": max(1, round(REPORTING_USERS * (SHARES[APP] + SHARES[OPERATOR]))),
    "Open311Citizen": max(1, round(REPORTING_USERS * SHARES[OPEN311])),
    "Tracker": 20,
    "DashboardReader": 5,
    "Officer": 5,
}


def _proof_photo() -> bytes:
    """A small JPEG proof photo (64 x 48 pixels)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (96, 140, 80)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


PHOTO = _proof_photo()


class RunState:
    """What every user of this Locust process shares: pool, credentials, ledger, acks."""

    def __init__(self) -> None:
        self.loaded = False
        self.pool: payloads.PayloadPool | None = None
        self.credentials: dict[str, Any] = {}
        self.tag = os.environ.get("LOADTEST_RUN_TAG", "lt")
        self.seed = int(os.environ.get("LOADTEST_SEED") or 0)
        self.idempotency = os.environ.get("LOADTEST_NO_IDEMPOTENCY", "") not in ("1", "true")
        self.profile = os.environ.get("LOADTEST_PROFILE", "")
        self.duration = float(os.environ.get("LOADTEST_DURATION") or 0)
        self.multiplier = float(os.environ.get("LOADTEST_SURGE_MULTIPLIER") or 0)
        self.acked: deque[str] = deque(maxlen=5000)
        self.users = itertools.count()
        self.pacers = itertools.count()
        self.worker_index = 0
        self.started: float | None = None
        self._ledger: io.TextIOWrapper | None = None

    def load(self) -> None:
        """Read the run folder (once per process)."""
        if self.loaded:
            return
        folder = os.environ.get("LOADTEST_RUN_DIR")
        if not folder or not (Path(folder) / payloads.POOL_FILE).is_file():
            msg = "LOADTEST_RUN_DIR must name a run folder prepared by `twin loadtest`"
            raise RuntimeError(msg)
        run_dir = Path(folder)
        self.pool = payloads.read_pool(run_dir)
        self.credentials = json.loads((run_dir / "credentials.json").read_text(encoding="utf-8"))
        name = f"ledger-{socket.gethostname()}-{os.getpid()}.jsonl"
        self._ledger = (run_dir / name).open("a", encoding="utf-8", buffering=1)
        if not self.multiplier:
            self.multiplier = shapes.surge_multiplier()
        self.loaded = True

    def log(self, record: dict[str, Any]) -> None:
        """Append one ledger record (one line, written through at once)."""
        assert self._ledger is not None
        self._ledger.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        """Flush and close the ledger."""
        if self._ledger is not None:
            self._ledger.flush()
            self._ledger.close()
            self._ledger = None

    def surge_share(self) -> float:
        """Share of flood extras among reports right now (0 outside a surge)."""
        if self.profile != "flood-surge" or self.started is None or not self.duration:
            return 0.0
        if not profiles.in_surge(time.monotonic() - self.started, self.duration):
            return 0.0
        return profiles.flood_share(self.multiplier)


STATE = RunState()


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):  # the master runs no users
        STATE.load()


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    STATE.started = time.monotonic()
    STATE.worker_index = int(getattr(environment.runner, "worker_index", 0) or 0)
    folder = os.environ.get("LOADTEST_RUN_DIR")
    if folder and not isinstance(environment.runner, WorkerRunner):  # tells the runner when
        (Path(folder) / "test_start").write_text(repr(time.time()), encoding="utf-8")


@events.quitting.add_listener
def _on_quitting(**_: Any) -> None:
    STATE.close()


def _connection_error(response: Any) -> str:
    error = getattr(response, "error", None)
    return f"connection error: {type(error).__name__ if error else 'no answer'}"


def _failure_text(response: Any) -> str:
    if not response.status_code:
        return _connection_error(response)
    return f"HTTP {response.status_code}: {(response.text or '')[:120]}"


class PacedUser(FastHttpUser):
    """A user starting its tasks as a Poisson process of `rate` per second.

    Gaps between task starts are exponential, drawn from the user's own seeded stream, and the
    first task waits a gap too, so many users together offer the open, unsynchronised arrivals
    of the twin's demand model. (Locust's ``constant_throughput`` runs every user's first task
    the instant it is spawned and then keeps them in step: a burst of all users at once, which
    shows up as a 100-300 ms tail that is the load generator's, not the API's.) A user behind its
    schedule (slow answers) starts at once, but never catches up more than a second's worth.
    """

    abstract = True
    rate = 1.0
    network_timeout = CLIENT_TIMEOUT_S
    connection_timeout = min(5.0, CLIENT_TIMEOUT_S)

    def on_start(self) -> None:
        """Seed the pacing and wait the first gap."""
        STATE.load()
        self.pacing = payloads.user_rng(STATE.seed + 17, STATE.worker_index, next(STATE.pacers))
        self.next_start = time.monotonic() + self.pacing.expovariate(self.rate)
        gevent.sleep(max(0.0, self.next_start - time.monotonic()))

    def wait_time(self) -> float:
        """Seconds until the next task starts."""
        now = time.monotonic()
        self.next_start = max(self.next_start, now - 1.0) + self.pacing.expovariate(self.rate)
        return max(0.0, self.next_start - now)


class ReportingUser(PacedUser):
    """A user who files reports, retrying each with the same idempotency key until answered."""

    abstract = True

    def on_start(self) -> None:
        """Seed this user's stream of payloads."""
        STATE.load()
        self.index = next(STATE.users)
        self.rng = payloads.user_rng(STATE.seed, STATE.worker_index, self.index)
        self.sequence = 0
        super().on_start()

    def draw(self, route: str) -> tuple[int, dict[str, Any]]:
        """A payload of `route`: a flood extra with the surge's share during a surge."""
        assert STATE.pool is not None
        flood = self.rng.random() < STATE.surge_share()
        number = STATE.pool.sample(self.rng, route, flood=flood)
        return number, STATE.pool.payloads[number]

    def file_report(self, route: str) -> None:
        """Send one report and retry it (same key, same body) until it is acknowledged."""
        number, payload = self.draw(route)
        self.sequence += 1
        key = f"{STATE.tag}-{STATE.worker_index}-{self.index}-{self.sequence}"
        description = f"{payload['description']} [lt {key}]"
        STATE.log({"e": "sent", "k": key, "p": number, "r": route})
        attempt = 0
        first = time.monotonic()
        while True:
            attempt += 1
            status, report_id, replayed = self.post_once(route, payload, description, key)
            if status == 201:
                ms = round((time.monotonic() - first) * 1000, 1)
                STATE.log(
                    {"e": "ack", "k": key, "id": report_id, "n": attempt, "rp": replayed, "ms": ms}
                )
                if report_id:
                    STATE.acked.append(report_id)
                return
            if status not in RETRY_STATUSES:
                STATE.log({"e": "rej", "k": key, "s": status})
                return
            gevent.sleep(min(1.0, 0.05 * 2 ** min(attempt, 5)))

    def post_once(
        self, route: str, payload: dict[str, Any], description: str, key: str
    ) -> tuple[int, str | None, bool]:
        """One attempt; (status, acknowledged report id, replayed)."""
        raise NotImplementedError


class Citizen(ReportingUser):
    """A resident reporting through the JAKI app, or a CRM operator typing in a report that came
    by Twitter, email, Facebook, SMS or at the desk: the native JSON API."""

    weight = WEIGHTS["Citizen"]
    rate = 1.0

    def post_once(
        self, route: str, payload: dict[str, Any], description: str, key: str
    ) -> tuple[int, str | None, bool]:
        """POST /api/v1/reports with the channel's key and (normally) an Idempotency-Key."""
        headers = {"X-API-Key": STATE.credentials["api_key"]}
        if STATE.idempotency:
            headers["Idempotency-Key"] = key
        body = {
            "category": payload["category"],
            "lat": payload["lat"],
            "lon": payload["lon"],
            "description": description,
            "channel": payload["channel"],
        }
        with self.client.post(
            "/api/v1/reports", json=body, headers=headers, name="/api/v1/reports",
            catch_response=True,
        ) as resp:  # fmt: skip
            if resp.status_code != 201:
                resp.failure(_failure_text(resp))
                return resp.status_code, None, False
            data = resp.json()
            if data.get("kelurahan_code") != payload["kelurahan"]:
                resp.failure(f"stored in {data.get('kelurahan_code')}, not {payload['kelurahan']}")
            replayed = resp.headers.get("Idempotent-Replayed") == "true"
            return 201, str(data.get("id")), replayed

    @task(max(1, round(100 * SHARES[APP])))
    def report_in_app(self) -> None:
        """A JAKI user files a report."""
        self.file_report(APP)

    @task(max(1, round(100 * SHARES[OPERATOR])))
    def report_via_operator(self) -> None:
        """An operator files a report that came by another channel."""
        self.file_report(OPERATOR)


class Open311Citizen(ReportingUser):
    """A resident reporting through a third-party app (Qlue) speaking Open311 GeoReport v2."""

    weight = WEIGHTS["Open311Citizen"]
    rate = 1.0

    def post_once(
        self, route: str, payload: dict[str, Any], description: str, key: str
    ) -> tuple[int, str | None, bool]:
        """POST /open311/v2/requests.json as a form, ``api_key`` among the fields."""
        form = {
            "api_key": STATE.credentials["open311_key"],
            "service_code": payload["category"],
            "lat": str(payload["lat"]),
            "long": str(payload["lon"]),
            "description": description,
        }
        headers = {"Idempotency-Key": key} if STATE.idempotency else {}
        with self.client.post(
            "/open311/v2/requests.json", data=form, headers=headers,
            name="/open311/v2/requests.json", catch_response=True,
        ) as resp:  # fmt: skip
            if resp.status_code != 201:
                resp.failure(_failure_text(resp))
                return resp.status_code, None, False
            item = resp.json()[0]
            if payload["kelurahan"] not in str(item.get("service_notice", "")):
                resp.failure(f"not routed to {payload['kelurahan']}: {item.get('service_notice')}")
            replayed = resp.headers.get("Idempotent-Replayed") == "true"
            return 201, str(item.get("service_request_id")), replayed

    @task
    def report(self) -> None:
        """File a report through Open311."""
        self.file_report(OPEN311)


class Tracker(PacedUser):
    """A citizen checking the status of an acknowledged report (their own or a neighbour's)."""

    weight = WEIGHTS["Tracker"]
    rate = 2.0

    def on_start(self) -> None:
        """Seed this user's choices."""
        STATE.load()
        self.rng = payloads.user_rng(STATE.seed + 7, STATE.worker_index, next(STATE.users))
        super().on_start()

    @task
    def track(self) -> None:
        """GET /api/v1/reports/{id} of an acknowledged report: it must be there."""
        if not STATE.acked:
            return
        report_id = STATE.acked[self.rng.randrange(len(STATE.acked))]
        with self.client.get(
            f"/api/v1/reports/{report_id}", name="/api/v1/reports/{id}", catch_response=True,
            headers={"X-API-Key": STATE.credentials["api_key"]},  # ids are not public (issue 17)
        ) as resp:  # fmt: skip
            if resp.status_code == 404:
                resp.failure(f"acknowledged report {report_id} is not found")
            elif resp.status_code != 200:
                resp.failure(_failure_text(resp))
            elif str(resp.json().get("id")) != report_id:
                resp.failure(f"asked for report {report_id}, got {resp.json().get('id')}")


class Officer(PacedUser):
    """A kelurahan officer: takes a report from the queue, claims it, resolves it with a photo."""

    weight = WEIGHTS["Officer"]
    rate = 0.5

    def on_start(self) -> None:
        """Take one of the officer tokens of the run."""
        STATE.load()
        index = next(STATE.users)
        officers = STATE.credentials["officers"]
        self.token = officers[index % len(officers)]["token"]
        self.rng = payloads.user_rng(STATE.seed + 11, STATE.worker_index, index)
        self.claimed: list[str] = []
        super().on_start()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @task
    def work(self) -> None:
        """Resolve what this officer claimed, else claim the next open report and resolve it."""
        if self.claimed:
            self.resolve(self.claimed.pop())
            return
        with self.client.get(
            "/api/v1/officer/queue?page_size=20", headers=self._auth(),
            name="/api/v1/officer/queue", catch_response=True,
        ) as resp:  # fmt: skip
            if resp.status_code != 200:
                resp.failure(_failure_text(resp))
                return
            waiting = [r["id"] for r in resp.json()["data"] if r["status"] in CLAIMABLE]
        if not waiting:
            return
        report_id = waiting[self.rng.randrange(min(5, len(waiting)))]
        with self.client.post(
            f"/api/v1/officer/reports/{report_id}/claim", headers=self._auth(),
            name="/api/v1/officer/reports/{id}/claim", catch_response=True,
        ) as resp:  # fmt: skip
            if resp.status_code == 409:  # another officer was quicker: expected
                resp.success()
                return
            if resp.status_code != 200:
                resp.failure(_failure_text(resp))
                return
        self.resolve(report_id, first=True)

    def resolve(self, report_id: str, *, first: bool = False) -> None:
        """POST the proof photo; a lost answer is retried on the next task."""
        with self.client.post(
            f"/api/v1/officer/reports/{report_id}/resolve", headers=self._auth(),
            files={"photo": ("proof.jpg", PHOTO, "image/jpeg")}, data={"note": "selesai"},
            name="/api/v1/officer/reports/{id}/resolve", catch_response=True,
        ) as resp:  # fmt: skip
            if resp.status_code == 200:
                return
            if resp.status_code == 409 and not first:  # the lost attempt had resolved it
                resp.success()
                return
            resp.failure(_failure_text(resp))
            if resp.status_code in RETRY_STATUSES:
                self.claimed.append(report_id)


class DashboardReader(PacedUser):
    """Someone watching the public KPIs: a kelurahan's figures, now and then the ranking."""

    weight = WEIGHTS["DashboardReader"]
    rate = 0.5

    def on_start(self) -> None:
        """Seed this user's choices."""
        STATE.load()
        self.rng = payloads.user_rng(STATE.seed + 13, STATE.worker_index, next(STATE.users))
        super().on_start()

    @task(4)
    def kelurahan(self) -> None:
        """GET /api/v1/kpis/kelurahan/{code} of a kelurahan, as often as it has reports."""
        assert STATE.pool is not None
        code = STATE.pool.kelurahan(self.rng)
        with self.client.get(
            f"/api/v1/kpis/kelurahan/{code}", name="/api/v1/kpis/kelurahan/{code}",
            catch_response=True,
        ) as resp:  # fmt: skip
            if resp.status_code != 200:
                resp.failure(_failure_text(resp))

    @task(1)
    def ranking(self) -> None:
        """GET /api/v1/kpis/ranking."""
        with self.client.get("/api/v1/kpis/ranking", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(_failure_text(resp))


if STATE.profile in shapes.SHAPES:  # the one shape class Locust finds in this module
    LoadShape = shapes.SHAPES[STATE.profile]


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(Citizen)
