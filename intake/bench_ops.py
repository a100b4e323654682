"""``twin bench ops``: the operations centre under load, measured on a real server.

Two figures, each against the issue's target:

- ``ops_ready_s``: seconds from opening ``/ops`` (an administrator's token, every kelurahan) to
  the map drawn with every open report and its filters ready, with `reports` open reports
  seeded (median of `repeat` page loads, in the system Chromium driven by Playwright);
- ``event_p99_s``: with `subscribers` clients on ``/api/v1/events`` while reports are posted at
  `rate` per second for `seconds`, the 99th percentile of the time from sending a report to
  each subscriber receiving its event (and ``events_lost``: events some subscriber never got).

A screenshot of the loaded map goes to ``reports_out/browser/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from intake.bench import BENCH_RATES, issue_key, running_server, twin_command
from intake.db import history, make_engine, migrate, reports
from intake.store import BLANK_REPORT, now_utc
from twin.city.datadir import output_root, resolve_data_dir
from twin.city.kelurahan import load_kelurahan
from twin.entities import CATEGORIES, OPEN_STATUSES

OPS_TARGETS = {"ops_ready_s": ("<=", 2.0), "event_p99_s": ("<=", 1.0), "events_lost": ("<=", 0.0)}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def label_points(data_dir: str | None) -> tuple[Any, np.ndarray, np.ndarray]:
    """The kelurahan table and a point inside each kelurahan (its label point): lat, lon."""
    paths = resolve_data_dir(data_dir)
    table = load_kelurahan(paths.require(paths.kelurahan))
    if "label_lat" in table.columns:
        return table, table["label_lat"].to_numpy(), table["label_lon"].to_numpy()
    points = table.geometry.representative_point()
    return table, points.y.to_numpy(), points.x.to_numpy()


def a_point_inside(data_dir: str | None) -> tuple[float, float]:
    """(lat, lon) inside the first kelurahan: where the posted reports are."""
    _, lats, lons = label_points(data_dir)
    return float(lats[0]), float(lons[0])


def seed_open_reports(url: str, n: int, *, data_dir: str | None, seed: int = 0) -> None:
    """`n` open reports spread over every kelurahan (around their label points), ages up to
    ten days, statuses mixed; written straight into the database."""
    rng = np.random.default_rng(seed)
    table, lats, lons = label_points(data_dir)
    pick = rng.integers(0, len(table), n)
    lat = lats[pick] + rng.uniform(-0.002, 0.002, n)
    lon = lons[pick] + rng.uniform(-0.002, 0.002, n)
    codes = table["kode_kemendagri"].to_numpy()[pick]
    categories = list(CATEGORIES)
    now = now_utc()
    rows, changes = [], []
    for i in range(n):
        created = now - timedelta(hours=float(rng.uniform(0, 240)))
        status = OPEN_STATUSES[int(rng.integers(0, len(OPEN_STATUSES)))]
        rows.append(
            {
                **BLANK_REPORT,
                "id": i + 1,
                "token": f"{i:032x}",
                "service_code": categories[int(rng.integers(0, len(categories)))],
                "description": "",
                "lat": float(lat[i]),
                "lon": float(lon[i]),
                "kelurahan_code": str(codes[i]),
                "channel": "jaki",
                "status": status,
                "created_at": created,
                "updated_at": created,
                "coordinated_at": None if status == "menunggu" else created,
            }
        )
        changes.append(
            {"report_id": i + 1, "status": "menunggu", "at": created, "note": "received"}
        )
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(reports.insert(), rows)
        conn.execute(history.insert(), changes)
    engine.dispose()


def admin_token(url: str) -> str:
    out = subprocess.run(
        twin_command("officers", "add", "--role", "admin", "--database-url", url),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def ops_ready_seconds(
    base: str, token: str, *, repeat: int, expected: int, screenshot: Path | None = None
) -> list[float]:
    """Seconds from navigation to the drawn map, per fresh page load (the first one saved as
    `screenshot`)."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(repeat):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_init_script(f"sessionStorage.setItem('twin-token', {token!r})")
            page = context.new_page()
            started = time.perf_counter()
            page.goto(base + "/ops")
            page.wait_for_selector("body[data-ready='1']", timeout=60_000)
            times.append(time.perf_counter() - started)
            shown = int(page.get_attribute("#count", "data-count") or 0)
            if shown != expected:
                raise RuntimeError(f"/ops shows {shown} reports, expected {expected}")
            if screenshot is not None and not times[1:]:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
            context.close()
        browser.close()
    return times


async def _subscriber(
    base: str, token: str, received: dict[str, list[float]], ready: asyncio.Event
) -> None:
    """One stream client on a raw connection: light enough that 200 of them in this process
    measure the server, not the client."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"event stream answered {head.splitlines()[0]!r}")
    ready.set()
    marker, buffer = b'"report.received","at":', b""
    try:
        while chunk := await reader.read(1 << 16):
            at = time.perf_counter()
            buffer += chunk
            cut = buffer.rfind(b"\n")  # events end with a blank line (CRLF or LF)
            if cut < 0:
                continue
            complete, buffer = buffer[:cut], buffer[cut + 1 :]
            start = complete.find(marker)
            while start >= 0:
                id_at = complete.index(b'"report":{"id":"', start) + 16
                report_id = complete[id_at : complete.index(b'"', id_at)].decode()
                received.setdefault(report_id, []).append(at)
                start = complete.find(marker, id_at)
    finally:
        writer.close()


async def _stream_latency(
    base: str,
    token: str,
    key: str,
    point: tuple[float, float],
    *,
    subscribers: int,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    import httpx

    received: dict[str, list[float]] = {}
    readies = [asyncio.Event() for _ in range(subscribers)]
    tasks = [asyncio.create_task(_subscriber(base, token, received, r)) for r in readies]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
    await asyncio.sleep(1.0)  # every stream registered with the hub
    sent: dict[str, float] = {}
    body = json.dumps({"category": "garbage", "lat": point[0], "lon": point[1]}).encode()
    async with httpx.AsyncClient(timeout=30) as client:

        async def post() -> None:
            at = time.perf_counter()
            answer = await client.post(
                base + "/api/v1/reports",
                content=body,
                headers={"X-API-Key": key, "Content-Type": "application/json"},
            )
            if answer.status_code == 201:
                sent[answer.json()["id"]] = at

        posts = []
        started = time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            posts.append(asyncio.create_task(post()))
        await asyncio.gather(*posts)
    await asyncio.sleep(3.0)  # the last events arrive
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [at - sent[rid] for rid, ats in received.items() if rid in sent for at in ats]
    expected = len(sent) * subscribers
    return {
        "reports_posted": len(sent),
        "events_expected": expected,
        "events_lost": expected - len(latencies),
        "event_p50_s": float(np.percentile(latencies, 50)) if latencies else float("nan"),
        "event_p99_s": float(np.percentile(latencies, 99)) if latencies else float("nan"),
        "event_max_s": max(latencies, default=float("nan")),
    }


def bench_ops(
    *,
    reports_open: int = 10_000,
    subscribers: int = 200,
    rate: float = 50.0,
    seconds: float = 10.0,
    repeat: int = 3,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Seed, serve, and measure the map's readiness and the stream's latency (see the module)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'ops.db'}"
        seed_open_reports(url, reports_open, data_dir=data_dir)
        point = a_point_inside(data_dir)
        key = issue_key(url)
        token = admin_token(url)
        env = {**BENCH_RATES, "INTAKE_MEDIA_DIR": str(Path(tmp) / "media")}
        with running_server(url, data_dir=data_dir, env=env) as (base, _):
            shot = output_root() / "browser" / f"ops_{reports_open}_open_reports.png"
            ready = ops_ready_seconds(
                base, token, repeat=repeat, expected=reports_open, screenshot=shot
            )
            stream = asyncio.run(
                _stream_latency(
                    base, token, key, point, subscribers=subscribers, rate=rate, seconds=seconds
                )
            )
    return {
        "reports_open": reports_open,
        "subscribers": subscribers,
        "rate_per_s": rate,
        "ops_ready_s": statistics.median(ready),
        "ops_ready_runs_s": [round(t, 3) for t in ready],
        **stream,
        "cpus": os.cpu_count(),
    }
