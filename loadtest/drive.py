"""The twin drives the real service: a simulated run's events played through the API in
accelerated time.

Each report of a twin run becomes requests at its simulated times divided by the speed factor:
the citizen's post (native JSON, or Open311 for the channels that reach Jakarta through third-party
apps), the desk's coordination and its dispatch to a crew or hand-over to an agency (coordinator
endpoints), the claim when a team takes the job and the resolution with a proof photo (officer
endpoints). Invalid and duplicate reports are coordinated, then claimed and closed at once; a
report never picked up gets its post only. A report's requests run in order on one worker; the
reports run side by side on a small thread pool, so one slow request does not hold the clock.

`compare_kpis` then sets intake's own KPIs (``/api/v1/kpis/kelurahan/{code}``) beside the twin's
for the same events, both in hours of simulated time: intake measured wall-clock hours between
its own timestamps, multiplied by the speed factor.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin.kpis import report_kpis

if TYPE_CHECKING:
    import requests

OPEN311_CHANNELS = ("qlue",)  # third-party apps speak Open311 GeoReport v2
COMPARED = ("mean_coordination_h", "mean_resolution_h", "share_coordinated_within_6h",
            "share_resolved_within_7d", "resolved_share")  # fmt: skip
# Agreement: times within 2 % or 0.1 simulated hours, shares within 0.02 (a request's lateness
# can move a report across the 6-hour or 7-day line, or past the end).
TIME_TOLERANCE = (0.02, 0.1)
SHARE_TOLERANCE = 0.02


@dataclass(slots=True)
class Credentials:
    """What the drive authenticates with: channel keys, a coordinator and an officer per kelurahan."""

    api_key: str
    open311_key: str
    coordinators: dict[str, str]
    officers: dict[str, str]


@dataclass(slots=True)
class DriveLog:
    """What happened: requests made and failed, and how late they ran (wall seconds)."""

    requests: int = 0
    failures: list[str] = field(default_factory=list)
    lateness_s: list[float] = field(default_factory=list)
    response_ms: list[float] = field(default_factory=list)
    ids: dict[int, str] = field(default_factory=dict)  # twin report -> intake id
    lock: threading.Lock = field(default_factory=threading.Lock)


def proof_photo() -> bytes:
    """A small JPEG, the crew's proof."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (96, 72), (90, 120, 60)).save(buf, "JPEG")
    return buf.getvalue()


def events(records: pd.DataFrame, hours: float) -> list[tuple[float, int, str]]:
    """``(simulated hour, report row, action)`` of every request, in time order, up to `hours`.

    Actions: ``post``, ``coordinate`` (with the dispatch or hand-over at the same moment),
    ``claim``, ``resolve``.
    """
    received = records["received_h"].to_numpy(float)
    coordinated = records["coordinated_h"].to_numpy(float)
    assigned = records["assigned_h"].to_numpy(float)
    closed = records["closed_h"].to_numpy(float)
    closes_at_desk = records["outcome"].astype(str).isin(("invalid", "duplicate")).to_numpy()
    out: list[tuple[float, int, int, str]] = []
    for row in range(len(records)):
        steps = [("post", received[row])]
        if np.isfinite(coordinated[row]):
            steps.append(("coordinate", coordinated[row]))
            if closes_at_desk[row]:
                steps += [("claim", coordinated[row]), ("resolve", closed[row])]
            elif np.isfinite(assigned[row]):
                steps.append(("claim", max(assigned[row], coordinated[row])))
                steps.append(("resolve", closed[row]))
        for order, (action, at) in enumerate(steps):
            if np.isfinite(at) and at <= hours:
                out.append((float(at), order, row, action))
    out.sort()
    return [(at, row, action) for at, _, row, action in out]


class Driver:
    """Plays the events of `records` against `host` at `speed` (simulated seconds per second)."""

    def __init__(
        self, host: str, records: pd.DataFrame, credentials: Credentials, *, speed: float,
        workers: int = 4,
    ) -> None:  # fmt: skip
        self.host = host.rstrip("/")
        self.records = records
        self.credentials = credentials
        self.speed = speed
        self.workers = workers
        self.photo = proof_photo()
        self.log = DriveLog()
        self._local = threading.local()

    def _client(self) -> requests.Session:
        import requests

        client = getattr(self._local, "client", None)
        if client is None:  # one keep-alive session per worker thread
            client = requests.Session()
            self._local.client = client
        return client

    def run(self, hours: float) -> tuple[float, float]:
        """Drive every event up to `hours` of simulated time; return the wall start and end."""
        plan = events(self.records, hours)
        self._warm_up()
        last: dict[int, Future[None]] = {}
        started = time.time()
        with ThreadPoolExecutor(self.workers) as pool:
            for at, row, action in plan:
                due = started + at * 3600.0 / self.speed
                wait = due - time.time()
                if wait > 0:
                    time.sleep(wait)
                before = last.get(row)
                last[row] = pool.submit(self._act, row, action, due, before)
            for future in last.values():
                future.result()
        return started, time.time()

    def _warm_up(self) -> None:
        """A report outside Jakarta (refused, nothing stored) and a KPI read before the clock
        starts: the API's first located report builds its spatial index, which would otherwise
        make the first events late."""
        c = self._client()
        body: dict[str, Any] = {"category": "other", "lat": -7.5, "lon": 110.4, "description": "-"}
        c.post(f"{self.host}/api/v1/reports", json=body, timeout=60,
               headers={"X-API-Key": self.credentials.api_key})  # fmt: skip
        code = next(iter(self.credentials.officers), None)
        if code is not None:
            c.get(f"{self.host}/api/v1/kpis/kelurahan/{code}", timeout=60)

    def _act(self, row: int, action: str, due: float, before: Future[None] | None) -> None:
        if before is not None:
            before.result()  # a report's requests in order
        with self.log.lock:
            self.log.lateness_s.append(max(0.0, time.time() - due))
        r = self.records.iloc[row]
        try:
            self._request(row, action, r)
        except Exception as exc:  # recorded and reported: the drive's verdict counts them
            with self.log.lock:
                self.log.failures.append(f"{action} of report {row}: {exc}")

    def _request(self, row: int, action: str, r: pd.Series) -> None:  # type: ignore[type-arg]
        c, host = self._client(), self.host
        cred = self.credentials
        kel = str(r["kelurahan_code"])
        if action == "post":
            if str(r["channel"]) in OPEN311_CHANNELS:
                form = {"api_key": cred.open311_key, "service_code": str(r["category"]),
                        "lat": repr(float(r["lat"])), "long": repr(float(r["lon"])),
                        "description": f"twin drive {row}"}  # fmt: skip
                resp = c.post(f"{host}/open311/v2/requests.json", data=form, timeout=30)
                self._check(resp, 201, action)
                report_id = str(resp.json()[0]["service_request_id"])
            else:
                body: dict[str, Any] = {"category": str(r["category"]), "lat": float(r["lat"]),
                        "lon": float(r["lon"]), "description": f"twin drive {row}"}  # fmt: skip
                resp = c.post(
                    f"{host}/api/v1/reports", json=body, headers={"X-API-Key": cred.api_key},
                    timeout=30,
                )  # fmt: skip
                self._check(resp, 201, action)
                report_id = str(resp.json()["id"])
            with self.log.lock:
                self.log.ids[row] = report_id
            return
        known = self.log.ids.get(row)
        if known is None:
            raise TwinError("its post failed")
        report_id = known
        coordinator = {"Authorization": f"Bearer {cred.coordinators[kel]}"}
        officer = {"Authorization": f"Bearer {cred.officers[kel]}"}
        base = f"{host}/api/v1/coordinator/reports/{report_id}"
        if action == "coordinate":
            self._check(c.post(f"{base}/coordinate", headers=coordinator, timeout=30), 200, action)
            outcome = str(r["outcome"])
            if outcome == "ppsu":
                crew: dict[str, Any] = {
                    "crew": f"PPSU {kel} crew {int(r['crew'])}" if r["crew"] >= 0 else "PPSU"
                }
                self._check(
                    c.post(f"{base}/dispatch", json=crew, headers=coordinator, timeout=30),
                    200,
                    action,
                )
            elif outcome == "agency":
                agency: dict[str, Any] = {"agency": str(r["agency"])}
                self._check(
                    c.post(f"{base}/handover", json=agency, headers=coordinator, timeout=30),
                    200,
                    action,
                )
        elif action == "claim":
            resp = c.post(
                f"{host}/api/v1/officer/reports/{report_id}/claim", headers=officer, timeout=30
            )
            self._check(resp, 200, action)
        elif action == "resolve":
            files = {"photo": ("proof.jpg", self.photo, "image/jpeg")}
            resp = c.post(
                f"{host}/api/v1/officer/reports/{report_id}/resolve", files=files,
                data={"note": "twin drive"}, headers=officer, timeout=30,
            )  # fmt: skip
            self._check(resp, 200, action)

    def _check(self, resp: requests.Response, status: int, action: str) -> None:
        with self.log.lock:
            self.log.requests += 1
            self.log.response_ms.append(resp.elapsed.total_seconds() * 1000)
        if resp.status_code != status:
            raise TwinError(f"{action}: HTTP {resp.status_code} {resp.text[:200]}")


def twin_kpis(
    records: pd.DataFrame,
    *,
    started: float,
    speed: float,
    ends: dict[str, float],
    horizons: dict[str, float],
    hours: float,
) -> pd.DataFrame:
    """The twin's KPIs per kelurahan for the driven events, each seen at its end (Unix seconds:
    when intake computed its figures), in intake's convention (hours since the epoch, censored
    at the end), restricted means to intake's horizon (hours): the horizon is a convention of
    the estimator, and intake's runs from its first stored receipt, which a late first post
    would move."""

    def wall_h(sim_h: pd.Series) -> np.ndarray:  # type: ignore[type-arg]
        t = sim_h.to_numpy(float)
        t = np.where(t <= hours, t, np.nan)  # not driven: not in intake
        return (started + t * 3600.0 / speed) / 3600.0

    driven = records[records["received_h"] <= hours]
    frame = pd.DataFrame(
        {
            "received_h": wall_h(driven["received_h"]),
            "coordinated_h": wall_h(driven["coordinated_h"]),
            "closed_h": wall_h(driven["closed_h"]),
        }
    )
    out = {}
    codes = driven["kelurahan_code"].astype(str).to_numpy()
    for code in sorted(set(codes)):
        out[code] = report_kpis(
            frame[codes == code], end_h=ends[code] / 3600.0, horizon_h=horizons[code]
        )
    return pd.DataFrame.from_dict(out, orient="index")


def compare_kpis(
    intake: pd.DataFrame, twin: pd.DataFrame, *, speed: float
) -> tuple[pd.DataFrame, bool]:
    """Intake's and the twin's KPIs per kelurahan in simulated hours, and whether all agree
    within `TIME_TOLERANCE` / `SHARE_TOLERANCE`."""
    rows = []
    ok = True
    for code in twin.index:
        for k in COMPARED:
            scale = speed if k.endswith("_h") else 1.0
            a, b = float(intake.loc[code, k]) * scale, float(twin.loc[code, k]) * scale
            if k.endswith("_h"):
                allowed = max(TIME_TOLERANCE[0] * abs(b), TIME_TOLERANCE[1])
            else:
                allowed = SHARE_TOLERANCE
            agree = (np.isnan(a) and np.isnan(b)) or abs(a - b) <= allowed
            ok &= bool(agree)
            rows.append({"kelurahan": code, "kpi": k, "intake": a, "twin": b,
                         "allowed": allowed, "agree": bool(agree)})  # fmt: skip
    return pd.DataFrame(rows), ok


def intake_kpis(host: str, codes: list[str], *, not_before: float) -> pd.DataFrame:
    """Intake's KPIs per kelurahan from its own endpoint, computed after `not_before` (Unix s)."""
    import requests

    out: dict[str, Any] = {}
    with requests.Session() as c:
        for code in codes:
            for _ in range(60):
                resp = c.get(f"{host.rstrip('/')}/api/v1/kpis/kelurahan/{code}", timeout=30)
                if resp.status_code != 200:
                    raise TwinError(f"/api/v1/kpis/kelurahan/{code}: HTTP {resp.status_code}")
                body = resp.json()
                if pd.Timestamp(body["as_of"]).timestamp() >= not_before:
                    break
                time.sleep(1.0)  # a cached figure from before the end: wait for a fresh one
            else:
                raise TwinError(f"/api/v1/kpis/kelurahan/{code} kept answering stale figures")
            out[code] = {
                k: (np.nan if body.get(k) is None else body[k])
                for k in (*COMPARED, "as_of", "mean_horizon_h")
            }
    return pd.DataFrame.from_dict(out, orient="index")
