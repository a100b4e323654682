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

from locust import events, task
from locust.runners import MasterRunner, WorkerRunner

import io
import os
import time
from pathlib import Path
from typing import Any

from loadtest import payloads, shapes
from loadtest.payloads import APP, OPEN311, OPERATOR
from loadtest.runstate import STATE
from loadtest.users import RETRY_STATUSES, PacedUser, ReportingUser, failure_text

CLAIMABLE = ("menunggu", "koordinasi", "disposisi")


def _route_shares() -> dict[str, float]:
    """Route shares of the scenario's channel mix (the class and task weights below)."""
    from twin.model.scenario import load_scenario

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
                resp.failure(failure_text(resp))
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
                resp.failure(failure_text(resp))
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
                resp.failure(failure_text(resp))
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
                resp.failure(failure_text(resp))
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
                resp.failure(failure_text(resp))
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
            resp.failure(failure_text(resp))
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
                resp.failure(failure_text(resp))

    @task(1)
    def ranking(self) -> None:
        """GET /api/v1/kpis/ranking."""
        with self.client.get("/api/v1/kpis/ranking", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(failure_text(resp))


if STATE.profile in shapes.SHAPES:  # the one shape class Locust finds in this module
    LoadShape = shapes.SHAPES[STATE.profile]


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(Citizen)
