"""What the public sees (issue 17): reports not enumerable, rounded coordinates, served proof
photos, ``Location`` and history on the 201, a discovery URL from configuration, 405 with Allow."""

from __future__ import annotations

import io
import re

from PIL import Image

from tests.intake.conftest import POINT_A, Api
from tests.intake.test_officers import claim, jpeg_with_gps, post_report, resolve
from tests.intake.test_reports import body

EXACT = {"lat": -6.195432, "lon": 106.805678}


def test_201_carries_location_and_the_history_as_received(api: Api) -> None:
    for key in (None, "loc-1", "loc-1"):  # a fresh report, then its replay
        headers = api.headers(**({"Idempotency-Key": key} if key else {}))
        r = api.client.post("/api/v1/reports", json=body(), headers=headers)
        assert r.status_code == 201
        assert r.headers["Location"] == f"/api/v1/reports/{r.json()['id']}"
        history = r.json()["history"]
        assert [(h["status"], h["note"]) for h in history] == [("menunggu", "received")]
        assert history[0]["at"] == r.json()["created_at"]
        got = api.client.get(r.headers["Location"], headers=api.headers())
        assert got.status_code == 200
        assert got.json()["history"] == history


def test_reports_by_id_need_a_key_and_the_public_tracks_by_token(api: Api) -> None:
    r = api.client.post("/api/v1/reports", json=body(**EXACT), headers=api.headers())
    report_id, token = r.json()["id"], r.json()["token"]
    assert (r.json()["lat"], r.json()["lon"]) == (EXACT["lat"], EXACT["lon"])
    for n in (report_id, "1", "2"):  # sequential ids: no enumeration without a key
        anonymous = api.client.get(f"/api/v1/reports/{n}")
        assert anonymous.status_code == 401
        assert "-6.19" not in anonymous.text
    keyed = api.client.get(f"/api/v1/reports/{report_id}", headers=api.headers())
    assert (keyed.json()["lat"], keyed.json()["lon"]) == (EXACT["lat"], EXACT["lon"])
    tracked = api.client.get(f"/api/v1/reports/track/{token}")
    assert tracked.status_code == 200
    assert (tracked.json()["lat"], tracked.json()["lon"]) == (-6.195, 106.806)
    assert [h["status"] for h in tracked.json()["history"]] == ["menunggu"]
    unknown = api.client.get("/api/v1/reports/track/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404
    assert api.client.get("/api/v1/reports/track/1").status_code == 422


def test_open311_listings_round_the_coordinates(api: Api) -> None:
    r = api.client.post("/api/v1/reports", json=body(**EXACT), headers=api.headers())
    rid = r.json()["id"]
    for url in (f"/open311/v2/requests/{rid}.json", "/open311/v2/requests.json"):
        item = api.client.get(url).json()[0]
        assert (item["lat"], item["long"]) == (-6.195, 106.806)
    assert "195432" not in api.client.get(f"/open311/v2/requests/{rid}.xml").text


def test_discovery_url_comes_from_configuration_not_from_the_host_header(api: Api) -> None:
    r = api.client.get("/open311/v2/discovery.json", headers={"Host": "evil.example"})
    assert "evil.example" not in r.text
    assert r.json()["endpoints"][0]["url"] == api.settings.public_url + "/open311/v2"


def test_the_proof_photo_is_served_without_metadata(api: Api) -> None:
    report_id = post_report(api)
    assert claim(api, report_id, api.officer).status_code == 200
    resolved = resolve(api, report_id, api.officer, jpeg_with_gps(), filename="rumah-saya.jpg")
    assert resolved.status_code == 200
    url = resolved.json()["media_url"]
    match = re.fullmatch(re.escape(api.settings.public_url) + r"(/media/[0-9a-f]{32}\.jpg)", url)
    assert match, url
    for view in (
        api.client.get(f"/api/v1/reports/{report_id}", headers=api.headers()).json(),
        api.client.get(f"/api/v1/reports/track/{resolved.json()['token']}").json(),
        api.client.get(f"/open311/v2/requests/{report_id}.json").json()[0],
    ):
        assert view["media_url"] == url
    photo = api.client.get(match.group(1))
    assert photo.status_code == 200
    assert photo.headers["Content-Type"] == "image/jpeg"
    assert photo.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
    assert b"Exif" not in photo.content
    assert b"rumah" not in photo.content
    with Image.open(io.BytesIO(photo.content)) as image:
        assert image.size == (48, 64)
        assert len(image.getexif()) == 0
    assert api.client.get("/media/" + "0" * 32 + ".jpg").status_code == 404
    assert api.client.get("/media/secret.jpg").status_code == 422
    assert api.client.get("/media/..%2fintake.db").status_code in (404, 422)


def test_a_wrong_method_is_405_with_allow(api: Api) -> None:
    for method, path, allowed in [
        ("DELETE", "/api/v1/reports", "POST"),
        ("PUT", "/api/v1/reports/1", "GET"),
        ("GET", "/api/v1/officer/reports/1/claim", "POST"),
        ("DELETE", "/open311/v2/services.json", "GET"),
    ]:
        r = api.client.request(method, path, headers=api.headers())
        assert r.status_code == 405, (method, path)
        assert r.headers["Allow"] == allowed, (method, path)


def test_strings_and_booleans_are_not_numbers(api: Api) -> None:
    for lat in ("-6.195", True, None, [POINT_A["lat"]]):
        r = api.client.post("/api/v1/reports", json=body(lat=lat), headers=api.headers())
        assert r.status_code == 422, (lat, r.text)
        assert r.json()["detail"].startswith("lat:")
    whole = api.client.post("/api/v1/reports", json=body(lat=-6, lon=107), headers=api.headers())
    assert "outside Jakarta" in whole.json()["detail"]  # a JSON integer is a number
