"""`twin bench intake`: accepted reports per second over loopback, with durable commits.

Starts the real service (`twin serve`) on a free loopback port with a fresh database, issues a
channel key, then posts reports from a light asyncio HTTP/1.1 client (keep-alive connections,
no client library overhead, so the client leaves the CPU to the server). Reports the rate of
201 answers and the latency percentiles, and checks that every acknowledged report is stored.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

INTAKE_TARGETS = {"accepted_per_s": (">=", 3000.0), "p99_ms": ("<=", 50.0)}
# one client address and one key send thousands of reports a second: limits that count (the
# limiter's cost is measured) but do not bind (the service's throughput is)
BENCH_RATES = {
    "INTAKE_RATE_REPORTS_KEY": "1000000/second",
    "INTAKE_RATE_REPORTS_ADDRESS": "1000000/second",
}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def twin_command(*args: str) -> list[str]:
    """The `twin` command line, run with this interpreter."""
    return [sys.executable, "-m", "twin_cli", *args]


@contextmanager
def running_server(
    database_url: str,
    *,
    data_dir: str | None,
    workers: int = 1,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start `twin serve` on loopback (`env`: extra ``INTAKE_*`` settings); yield (base URL,
    process); stop it afterwards."""
    port = port or free_port()
    args = ["serve", "--port", str(port), "--database-url", database_url, "--workers", str(workers)]
    if data_dir:
        args += ["--data", data_dir]
    proc = subprocess.Popen(
        twin_command(*args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        wait_until_up(port, proc)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def wait_until_up(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    """Poll /health until it answers 200 (raise with the server's stderr if it died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"twin serve exited with {proc.returncode}: {err.strip()[-500:]}")
        try:
            status, _ = asyncio.run(_one_request("127.0.0.1", port, "GET", "/health", b"", {}))
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"twin serve did not answer on port {port} within {timeout_s:.0f} s")


def issue_key(database_url: str, channel: str = "jaki") -> str:
    """A new channel key through the admin command, as an operator would."""
    out = subprocess.run(
        twin_command("keys", "add", "--channel", channel, "--database-url", database_url),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


def _request_bytes(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _one_request(
    host: str, port: int, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(_request_bytes(method, path, body, headers))
        await writer.drain()
        return await _read_response(reader)
    finally:
        writer.close()
        await writer.wait_closed()


def report_bodies(n: int, *, seed: int = 0) -> list[bytes]:
    """`n` JSON report bodies at points spread over central Jakarta."""
    rng = np.random.default_rng(seed)
    lat = rng.uniform(-6.24, -6.14, n)
    lon = rng.uniform(106.78, 106.90, n)
    categories = ["garbage", "illegal_parking", "public_order", "trees", "roads"]
    return [
        json.dumps(
            {
                "category": categories[i % 5],
                "lat": round(float(lat[i]), 6),
                "lon": round(float(lon[i]), 6),
                "description": f"bench report {i}",
            }
        ).encode()
        for i in range(n)
    ]


async def post_reports(
    base_url: str, key: str, bodies: list[bytes], *, concurrency: int
) -> tuple[list[float], list[int], list[str], float]:
    """Post every body over `concurrency` keep-alive connections.

    Returns
    -------
    latencies_s, statuses, acknowledged_ids, elapsed_s
    """
    host, port = base_url.removeprefix("http://").split(":")
    headers = {"Content-Type": "application/json", "X-API-Key": key}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []
    statuses: list[int] = []
    acked: list[str] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while not queue.empty():
                body = queue.get_nowait()
                t = time.perf_counter()
                writer.write(_request_bytes("POST", "/api/v1/reports", body, headers))
                await writer.drain()
                status, payload = await _read_response(reader)
                latencies.append(time.perf_counter() - t)
                statuses.append(status)
                if status == 201:
                    acked.append(json.loads(payload)["id"])
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses, acked, time.perf_counter() - started


def count_stored(database_url: str, ids: list[str]) -> int:
    """How many of `ids` are in the reports table."""
    import sqlalchemy as sa

    from intake.db import make_engine, reports

    engine = make_engine(database_url)
    with engine.connect() as conn:
        found = {str(r[0]) for r in conn.execute(sa.select(reports.c.id))}
    engine.dispose()
    return sum(1 for i in ids if i in found)


def bench_intake(
    *, requests: int = 20_000, concurrency: int = 64, workers: int = 1, database_url: str | None = None,
    data_dir: str | None = None, repeat: int = 3,
) -> dict[str, Any]:  # fmt: skip
    """Run the intake benchmark `repeat` times on a fresh database; medians are reported."""
    runs = []
    for r in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
            if url.startswith("postgresql"):
                _reset_postgres(url)
            key = issue_key(url)
            with running_server(url, data_dir=data_dir, workers=workers, env=BENCH_RATES) as (
                base,
                _,
            ):
                bodies = report_bodies(requests, seed=r)
                asyncio.run(
                    post_reports(base, key, bodies[: min(500, requests)], concurrency=concurrency)
                )
                lat, statuses, acked, elapsed = asyncio.run(
                    post_reports(base, key, bodies, concurrency=concurrency)
                )
            accepted = sum(1 for s in statuses if s == 201)
            runs.append(
                {
                    "accepted_per_s": accepted / elapsed,
                    "p50_ms": float(np.percentile(lat, 50) * 1000),
                    "p99_ms": float(np.percentile(lat, 99) * 1000),
                    "non_201": len(statuses) - accepted,
                    "lost": len(acked) - count_stored(url, acked),
                }
            )
    return {
        "database": (database_url or "sqlite").split("://")[0],
        "requests": requests,
        "concurrency": concurrency,
        "workers": workers,
        **{
            k: statistics.median(run[k] for run in runs)
            for k in ("accepted_per_s", "p50_ms", "p99_ms")
        },
        "non_201": sum(run["non_201"] for run in runs),
        "lost": sum(run["lost"] for run in runs),
        "cpu_count": os.cpu_count(),
    }


def _reset_postgres(url: str) -> None:
    from intake.db import make_engine, metadata, schema_version

    engine = make_engine(url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        schema_version.drop(conn, checkfirst=True)
    engine.dispose()
