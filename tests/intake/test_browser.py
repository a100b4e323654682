"""/ops and /map in a real browser: Playwright driving the system Chromium (no browser download).

A real server (`twin serve`) on loopback with seeded reports; screenshots go to
``reports_out/browser/``. Chromium comes from the Debian package that ``.ci/run`` installs.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from intake.bench import running_server
from tests.intake.conftest import KEL_A, KEL_B, POINT_A, POINT_B, sqlite_with_key
from tests.intake.test_events import officer_token

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "reports_out" / "browser"
PII = {"name": "Dewi Lestari", "email": "dewi.lestari@example.org", "phone": "+62 813 9876 5432"}
DESCRIPTION = "got di depan rumah Bu Dewi"

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs the chromium package")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Site:
    """A seeded server and its credentials."""

    base: str
    key: str
    officer_a: str
    officer_b: str
    admin: str
    ids_a: list[str]
    ids_b: list[str]
    waiting_a: int
    resolved: str

    def post(self, point: dict[str, float]) -> str:
        body = {"category": "drainage", **point, "description": DESCRIPTION, "reporter": PII}
        r = httpx.post(self.base + "/api/v1/reports", json=body, headers={"X-API-Key": self.key})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 140, 60)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from tests.conftest import write_city

    root = tmp_path_factory.mktemp("browser")
    data = write_city(root / "data")
    url, key = sqlite_with_key(root / "b.db")
    a = officer_token(url, KEL_A, "officer", data)
    b = officer_token(url, KEL_B, "officer", data)
    coordinator = officer_token(url, KEL_A, "coordinator", data)
    admin = officer_token(url, None, "admin", data)
    env = {
        "INTAKE_MEDIA_DIR": str(root / "media"),
        "INTAKE_RANKING_MIN_REPORTS": "1",
    }  # a few reports
    with running_server(url, data_dir=str(data), env=env) as (base, _):
        site = Site(base, key, a, b, admin, [], [], 0, "")
        site.ids_a = [site.post(POINT_A) for _ in range(8)]
        site.ids_b = [site.post(POINT_B) for _ in range(3)]
        auth = {"Authorization": f"Bearer {coordinator}"}
        for report_id in site.ids_a[:2]:  # in progress: yellow
            r = httpx.post(
                f"{base}/api/v1/coordinator/reports/{report_id}/coordinate", headers=auth
            )
            assert r.status_code == 200
        site.resolved = site.ids_a[2]  # done, with a proof photo: green
        officer = {"Authorization": f"Bearer {a}"}
        r = httpx.post(f"{base}/api/v1/officer/reports/{site.resolved}/claim", headers=officer)
        assert r.status_code == 200
        r = httpx.post(
            f"{base}/api/v1/officer/reports/{site.resolved}/resolve",
            files={"photo": ("p.jpg", jpeg(), "image/jpeg")},
            data={"note": "saluran sudah bersih"},
            headers=officer,
        )
        assert r.status_code == 200, r.text
        site.waiting_a = 5
        yield site


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:  # after the server: its start uses asyncio
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def open_ops(browser: Any, site: Site, token: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(site.base + "/ops")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)
    page.wait_for_selector("#live[data-live='1']", timeout=10_000)
    return page


def count(page: Any) -> int:
    return int(page.get_attribute("#count", "data-count"))


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_ops_renders_filters_and_goes_live(browser: Any, site: Site) -> None:
    page = open_ops(browser, site, site.officer_a)
    assert count(page) == len(site.ids_a)
    assert page.evaluate("points.getLayers().length") == len(site.ids_a)  # drawn on the map
    assert sorted(page.evaluate("[...state.markers.keys()]"), key=int) == site.ids_a
    shot(page, "ops_officer_a")
    page.select_option("#f-status", "menunggu")
    assert count(page) == site.waiting_a
    assert page.evaluate("points.getLayers().length") == site.waiting_a
    page.select_option("#f-status", "selesai")
    assert count(page) == 1
    page.select_option("#f-status", "")
    page.select_option("#f-category", "roads")
    assert count(page) == 0
    page.select_option("#f-category", "")
    assert count(page) == len(site.ids_a)

    started = time.monotonic()
    new = site.post(POINT_A)
    page.wait_for_function(
        f"state.markers.has('{new}')", timeout=2_000
    )  # without reload, within 2 s
    seen_after = time.monotonic() - started
    assert seen_after < 2.0
    assert count(page) == len(site.ids_a) + 1
    site.ids_a.append(new)
    site.waiting_a += 1
    shot(page, "ops_live_report")
    page.close()


def test_detail_history_photo_and_ranking(browser: Any, site: Site) -> None:
    page = open_ops(browser, site, site.officer_a)
    page.evaluate(f"detail('{site.resolved}')")
    page.wait_for_selector("#history li")
    history = page.inner_text("#history")
    assert len(page.query_selector_all("#history li")) == 3  # received, claimed, resolved
    assert "saluran sudah bersih" in history
    page.wait_for_function("document.getElementById('proof').naturalWidth > 0", timeout=5_000)
    page.wait_for_selector("#best li")
    best = page.inner_text("#best")
    assert "·" in best
    assert "31.71" not in best  # names, not codes
    shot(page, "ops_detail_ranking")
    page.close()


def test_an_officer_of_another_kelurahan_sees_none_of_them(browser: Any, site: Site) -> None:
    page = open_ops(browser, site, site.officer_b)
    assert sorted(page.evaluate("[...state.reports.keys()]"), key=int) == site.ids_b
    site.post(POINT_A)
    time.sleep(1.5)  # a report of KEL_A: the stream of KEL_B must not carry it
    assert sorted(page.evaluate("[...state.reports.keys()]"), key=int) == site.ids_b
    page.evaluate(f"detail('{site.ids_a[0]}')")
    page.wait_for_function("document.getElementById('detail').innerText.includes('404')")
    shot(page, "ops_officer_b")
    page.close()


def test_a_refused_token_shows_nothing(browser: Any, site: Site) -> None:
    page = browser.new_page()
    page.goto(site.base + "/ops")
    page.fill("#token", "off_not_a_real_token")
    page.click("button[type=submit]")
    page.wait_for_function("document.getElementById('error').innerText.includes('401')")
    assert count(page) == 0
    assert page.evaluate("state.reports.size") == 0
    page.close()


def test_the_public_map_has_no_personal_data(browser: Any, site: Site) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    bodies: list[str] = []

    def keep(response: Any) -> None:
        if "events" not in response.url and response.request.resource_type in ("fetch", "xhr"):
            bodies.append(response.text())

    page.on("response", keep)
    page.goto(site.base + "/map")
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)
    page.wait_for_selector("#live[data-live='1']", timeout=10_000)
    total = len(httpx.get(site.base + "/api/v1/public/reports").json()["rows"])
    assert total >= len(site.ids_a) + len(site.ids_b)
    assert count(page) == total
    new = site.post(POINT_B)
    page.wait_for_function(f"state.markers.has('{new}')", timeout=2_000)
    page.evaluate(f"detail('{site.resolved}')")
    page.wait_for_selector("#history li")
    page.wait_for_function("document.getElementById('proof').naturalWidth > 0", timeout=5_000)
    shot(page, "public_map")
    seen = (
        page.content() + "".join(bodies) + json.dumps(page.evaluate("[...state.reports.values()]"))
    )
    for secret in [*PII.values(), "Dewi", DESCRIPTION]:
        assert secret not in seen
    for lat, lon in page.evaluate("[...state.reports.values()].map(r => [r.lat, r.lon])"):
        assert re.fullmatch(r"-?\d+(\.\d{1,3})?", str(lat))
        assert re.fullmatch(r"-?\d+(\.\d{1,3})?", str(lon))
    page.close()
