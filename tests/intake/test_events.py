"""Alerts: the outbox written with the change, signed webhooks, retries, dead letters, SSRF,
SLA events, the event stream scoped by token, and no alert lost or doubled across SIGKILL."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from intake import outbox, webhooks
from intake.bench import running_server, twin_command
from intake.db import deliveries, events, make_engine, reports
from intake.db import webhooks as subscriptions
from intake.store import as_utc, now_utc
from tests.intake.conftest import KEL_A, KEL_B, POINT_A, POINT_B, Api, sqlite_with_key
from tests.intake.test_officers import claim, new_officer, post_report

PII = {"name": "Budi Santoso", "email": "budi@example.org", "phone": "+62 811 222 333"}


@pytest.fixture(autouse=True)
def _no_background_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app under test delivers nothing itself: each test drives its own `Deliverer`, or
    starts a server with deliveries on."""
    monkeypatch.setenv("INTAKE_WEBHOOK_DELIVERIES", "0")


@dataclass
class Receiver:
    """A webhook receiver on loopback that records each POST (and may fail the first ones)."""

    fail_first: int = 0
    delay_s: float = 0.0
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def handled_ids(self) -> set[str]:
        """What an idempotent receiver acts on: each event id once."""
        return {headers["x-twin-event-id"] for headers, _ in self.posts}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            time.sleep(state.delay_s)
            failing = len(state.posts) <= state.fail_first
            self.send_response(500 if failing else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def admin_of(api: Api) -> str:
    return new_officer(api, kelurahan_code="*", role="admin")


def subscribe(api: Api, url: str, kelurahan_code: str = KEL_A) -> dict[str, Any]:
    engine = make_engine(api.settings.database_url)
    with engine.begin() as conn:
        wid, secret = webhooks.subscribe(
            conn, kelurahan_code=kelurahan_code, url=url, allow_private=True
        )
    engine.dispose()
    return {"id": wid, "secret": secret}


def table(api: Api, which: sa.Table) -> list[dict[str, Any]]:
    engine = make_engine(api.settings.database_url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(which).order_by(which.c.id)).mappings()]
    engine.dispose()
    return rows


def deliverer(api: Api, **policy: Any) -> webhooks.Deliverer:
    engine = make_engine(api.settings.database_url)
    return webhooks.Deliverer(
        engine, webhooks.DeliveryPolicy(allow_private=True, sla_sweep_seconds=1e9, **policy)
    )


def test_changes_write_events_and_deliveries_for_matching_subscriptions(
    api: Api, receiver: Receiver
) -> None:
    mine = subscribe(api, receiver.url, KEL_A)
    everything = subscribe(api, receiver.url, "*")
    body = {"category": "garbage", **POINT_A, "description": "x", "reporter": PII}
    report_a = api.client.post("/api/v1/reports", json=body, headers=api.headers()).json()["id"]
    post_report(api, POINT_B)
    assert claim(api, report_a, api.officer).status_code == 200
    rows = table(api, events)
    assert [(r["kind"], r["kelurahan_code"]) for r in rows] == [
        (outbox.RECEIVED, KEL_A),
        (outbox.RECEIVED, KEL_B),
        (outbox.STATUS_CHANGED, KEL_A),
    ]
    for r in rows:
        payload = json.loads(r["payload"])
        assert payload["event_id"] == r["event_id"]
        for secret in PII.values():
            assert secret not in r["payload"]
        assert payload["report"]["lat"] == round(payload["report"]["lat"], 3)
    queued = sorted((d["event_id"], d["webhook_id"]) for d in table(api, deliveries))
    ids = [r["id"] for r in rows]
    assert queued == sorted(
        [(ids[0], mine["id"]), (ids[0], everything["id"]), (ids[1], everything["id"]),
         (ids[2], mine["id"]), (ids[2], everything["id"])]
    )  # fmt: skip


def test_a_refused_change_writes_no_event(api: Api) -> None:
    report_id = post_report(api)
    assert claim(api, report_id, api.officer).status_code == 200
    assert claim(api, report_id, api.officer).status_code == 409
    assert [r["kind"] for r in table(api, events)] == [outbox.RECEIVED, outbox.STATUS_CHANGED]


def test_delivery_is_signed_retried_with_backoff_then_dead_lettered(
    api: Api, receiver: Receiver
) -> None:
    hook = subscribe(api, receiver.url)
    receiver.fail_first = 100
    post_report(api)
    worker = deliverer(api, max_attempts=3)
    try:
        assert worker.step() == 1
        first = table(api, deliveries)[0]
        assert first["state"] == "pending"
        assert first["attempts"] == 1
        assert first["last_error"] == "HTTP 500"
        wait = as_utc(first["next_at"]) - now_utc()  # type: ignore[operator]
        assert timedelta(seconds=1) < wait <= timedelta(seconds=2)  # tenacity's first wait: 2 s
        assert worker.step() == 0  # not due yet
        for _ in range(2):  # make it due now, twice: attempts 2 and 3
            engine = make_engine(api.settings.database_url)
            with engine.begin() as conn:
                conn.execute(deliveries.update().values(next_at=now_utc()))
            engine.dispose()
            assert worker.step() == 1
    finally:
        worker.close()
        worker.engine.dispose()
    dead = table(api, deliveries)[0]
    assert dead["state"] == "dead"
    assert dead["attempts"] == 3
    headers, body = receiver.posts[0]
    expected = hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-twin-signature"] == f"sha256={expected}"
    assert headers["x-twin-event-id"] == json.loads(body)["event_id"]
    assert len(receiver.handled_ids()) == 1
    assert len(receiver.posts) == 3  # the same event, three tries
    admin = admin_of(api)
    listed = api.client.get("/api/v1/admin/deliveries", headers=api.bearer(admin)).json()
    assert [d["id"] for d in listed] == [dead["id"]]
    assert listed[0]["last_error"] == "HTTP 500"
    r = api.client.get("/api/v1/admin/deliveries", headers=api.bearer(api.coordinator))
    assert r.status_code == 403
    r = api.client.post(f"/api/v1/admin/deliveries/{dead['id']}/retry", headers=api.bearer(admin))
    assert r.status_code == 200
    assert table(api, deliveries)[0]["state"] == "pending"
    r = api.client.post(f"/api/v1/admin/deliveries/{dead['id']}/retry", headers=api.bearer(admin))
    assert r.status_code == 404


def test_a_successful_delivery_is_made_once(api: Api, receiver: Receiver) -> None:
    subscribe(api, receiver.url)
    post_report(api)
    worker = deliverer(api)
    try:
        assert worker.step() == 1
        assert worker.step() == 0
    finally:
        worker.close()
        worker.engine.dispose()
    assert len(receiver.posts) == 1
    assert table(api, deliveries)[0]["state"] == "delivered"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.org/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http://127.0.0.1:9/hook", "private or local"),
        ("http://localhost/hook", "private or local"),
        ("http://10.1.2.3/hook", "private or local"),
        ("http://169.254.169.254/latest/meta-data", "private or local"),
        ("http://[::1]/hook", "private or local"),
        ("http://user:pw@93.184.216.34/hook", "credentials"),
        ("https://93.184.216.34/" + "a" * 2001, "at most 2000 characters"),
    ],
)
def test_webhook_urls_that_could_reach_inside_are_refused(api: Api, url: str, words: str) -> None:
    admin = admin_of(api)
    r = api.client.post(
        "/api/v1/admin/webhooks",
        json={"url": url, "kelurahan_code": KEL_A},
        headers=api.bearer(admin),
    )
    assert r.status_code == 422
    assert words in r.json()["detail"]
    assert table(api, subscriptions) == []


def test_only_an_administrator_subscribes(api: Api) -> None:
    body = {"url": "https://93.184.216.34/hook", "kelurahan_code": KEL_A}
    r = api.client.post("/api/v1/admin/webhooks", json=body, headers=api.bearer(api.coordinator))
    assert r.status_code == 403
    r = api.client.post("/api/v1/admin/webhooks", json=body)
    assert r.status_code == 401
    admin = admin_of(api)
    r = api.client.post("/api/v1/admin/webhooks", json=body, headers=api.bearer(admin))
    assert r.status_code == 201, r.text
    assert r.json()["secret"].startswith("whsec_")
    r = api.client.post(
        "/api/v1/admin/webhooks",
        json={**body, "kelurahan_code": "31.99.99.9999"},
        headers=api.bearer(admin),
    )
    assert r.status_code == 422


def test_sla_events_once_per_report_and_target(api: Api) -> None:
    fresh, nearing, breached, old = (post_report(api) for _ in range(4))
    ages = {nearing: 5.5, breached: 6.5, old: 200}
    engine = make_engine(api.settings.database_url)
    with engine.begin() as conn:
        for report_id, hours in ages.items():
            conn.execute(
                reports.update()
                .where(reports.c.id == int(report_id))
                .values(created_at=now_utc() - timedelta(hours=hours))
            )
        assert outbox.sweep_sla(conn, now=now_utc(), nearing_hours=5.0) == 4
    with engine.begin() as conn:
        assert outbox.sweep_sla(conn, now=now_utc(), nearing_hours=5.0) == 0
    engine.dispose()
    sla = [
        (str(r["report_id"]), r["kind"], json.loads(r["payload"])["sla"]["target"])
        for r in table(api, events)
        if r["kind"] in (outbox.SLA_NEARING, outbox.SLA_BREACHED)
    ]
    assert sorted(sla) == sorted(
        [
            (nearing, outbox.SLA_NEARING, "coordination_6h"),
            (breached, outbox.SLA_BREACHED, "coordination_6h"),
            (old, outbox.SLA_BREACHED, "coordination_6h"),
            (old, outbox.SLA_BREACHED, "resolution_7d"),
        ]
    )
    assert fresh not in {s[0] for s in sla}


# --- the real server: the stream and SIGKILL ----------------------------------------------------


def officer_token(url: str, kelurahan: str | None, role: str, data: Path) -> str:
    args = ["officers", "add", "--role", role, "--database-url", url, "--data", str(data)]
    if kelurahan:
        args += ["--kelurahan", kelurahan]
    out = subprocess.run(twin_command(*args), check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def read_events(base: str, token: str | None, n: int, seconds: float, **headers: str) -> list[dict[str, Any]]:  # fmt: skip
    """The first `n` events of the stream (fewer if `seconds` pass first)."""
    got: list[dict[str, Any]] = []
    path = "/api/v1/events" if token else "/api/v1/public/events"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with httpx.stream("GET", base + path, headers=headers, timeout=seconds) as r:
            assert r.status_code == 200
            current: dict[str, Any] = {}
            for line in r.iter_lines():
                if line.startswith(("id:", "event:", "data:")):
                    name, _, value = line.partition(":")
                    current[name] = value.strip()
                elif not line and "data" in current:
                    got.append(current)
                    current = {}
                    if len(got) == n:
                        break
    except httpx.ReadTimeout:
        pass
    return got


def post_json(base: str, key: str, point: dict[str, float]) -> str:
    r = httpx.post(
        base + "/api/v1/reports",
        json={"category": "garbage", **point, "reporter": PII},
        headers={"X-API-Key": key},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_the_stream_is_scoped_by_token_and_resumes(tmp_path: Path, synthetic_dir: Path) -> None:
    url, key = sqlite_with_key(tmp_path / "s.db")
    a = officer_token(url, KEL_A, "officer", synthetic_dir)
    b = officer_token(url, KEL_B, "officer", synthetic_dir)
    with running_server(url, data_dir=str(synthetic_dir)) as (base, _):
        for bad in ({"Authorization": "Bearer off_forged"}, {"Authorization": "Basic x"}, {}):
            r = httpx.get(base + "/api/v1/events", headers=bad)
            assert r.status_code == 401
            assert "report" not in r.text
        results: dict[str, list[dict[str, Any]]] = {}
        readers = [
            threading.Thread(target=lambda: results.__setitem__("a", read_events(base, a, 2, 6))),
            threading.Thread(target=lambda: results.__setitem__("b", read_events(base, b, 1, 6))),
        ]
        for t in readers:
            t.start()
        time.sleep(1.0)  # the readers are connected
        started = time.monotonic()
        first = post_json(base, key, POINT_A)
        second = post_json(base, key, POINT_A)
        for t in readers:
            t.join()
        got_a = [json.loads(e["data"]) for e in results["a"]]
        assert [e["report"]["id"] for e in got_a] == [first, second]
        assert all(e["type"] == "report.received" for e in got_a)
        assert time.monotonic() - started < 6
        assert results["b"] == []  # another kelurahan's officer sees none of them
        for secret in PII.values():
            assert secret not in json.dumps(results)
        # reconnect after the first: the second is replayed from the outbox
        resumed = read_events(base, a, 1, 3, **{"Last-Event-ID": results["a"][0]["id"]})
        assert [json.loads(e["data"])["report"]["id"] for e in resumed] == [second]


def test_no_alert_lost_or_doubled_across_sigkill(
    tmp_path: Path, synthetic_dir: Path, receiver: Receiver
) -> None:
    """Killed right after the commit, before any delivery: the restarted server delivers it once.

    Killed again while a POST is in flight (the receiver has it, the server has not recorded
    it): the retry carries the same event id, so the receiver acts on it once.
    """
    url, key = sqlite_with_key(tmp_path / "k.db")
    engine = make_engine(url)
    with engine.begin() as conn:
        webhooks.subscribe(conn, kelurahan_code=KEL_A, url=receiver.url, allow_private=True)
    engine.dispose()
    env = {
        "INTAKE_WEBHOOK_DELIVERIES": "1",
        "INTAKE_WEBHOOK_ALLOW_PRIVATE": "1",
        "INTAKE_WEBHOOK_LEASE_SECONDS": "1",
    }
    crash = {**env, "INTAKE_FAULT_CRASH_AFTER_COMMITS": "1"}
    with running_server(url, data_dir=str(synthetic_dir), env=crash) as (base, proc):
        with pytest.raises(httpx.HTTPError):  # the server dies after committing, before answering
            post_json(base, key, POINT_A)
        assert proc.wait(timeout=10) == 70
    assert receiver.posts == []
    with running_server(url, data_dir=str(synthetic_dir), env=env):
        deadline = time.monotonic() + 10
        while not receiver.posts and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # long enough for a second delivery, were one to be made
    assert len(receiver.posts) == 1
    assert json.loads(receiver.posts[0][1])["type"] == "report.received"

    receiver.delay_s = 3.0  # the server is killed while the receiver holds the POST
    with running_server(url, data_dir=str(synthetic_dir), env=env) as (base, proc):
        post_json(base, key, POINT_A)
        deadline = time.monotonic() + 10
        while len(receiver.posts) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    receiver.delay_s = 0.0
    with running_server(url, data_dir=str(synthetic_dir), env=env):
        deadline = time.monotonic() + 15
        while len(receiver.posts) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
    ids = [h["x-twin-event-id"] for h, _ in receiver.posts]
    assert len(ids) == 3
    assert ids[1] == ids[2]  # the retry of the interrupted POST: the same event
    assert len(receiver.handled_ids()) == 2  # two alerts, each acted on once
    engine = make_engine(url)
    with engine.connect() as conn:
        states = conn.execute(sa.select(deliveries.c.state)).scalars().all()
    engine.dispose()
    assert states == ["delivered", "delivered"]


def test_webhook_commands(
    tmp_path: Path, synthetic_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from twin_cli.main import main

    url, _ = sqlite_with_key(tmp_path / "w.db")
    base = ["--database-url", url]
    add = ["webhooks", "add", *base, "--data", str(synthetic_dir)]
    assert main([*add, "--kelurahan", "all", "--url", "http://127.0.0.1:9/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "private or local" in err
    assert main([*add, "--kelurahan", "31.99.99.9999", "--url", "https://93.184.216.34/"]) == 2
    assert "no such kelurahan" in capsys.readouterr().err
    assert main([*add, "--kelurahan", KEL_A, "--url", "https://93.184.216.34/hook"]) == 0
    assert capsys.readouterr().out.strip().startswith("whsec_")
    assert main(["webhooks", "dead", *base]) == 0
    assert capsys.readouterr().out == ""
    assert main(["webhooks", "retry", *base, "--delivery", "1"]) == 2
    assert "no dead delivery" in capsys.readouterr().err
