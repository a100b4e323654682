"""Open311 GeoReport v2: discovery, services, POST/GET requests, tokens, errors, privacy."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx2 as httpx  # the client behind starlette.testclient
import pytest
import sqlalchemy as sa

from intake.db import make_engine, reports
from tests.intake.conftest import KEL_A, POINT_A, Api
from twin.entities import CATEGORIES

V2 = "/open311/v2"
KEL_LIMA = "31.71.02.1003"  # "Lima": column 2, row 1 of the synthetic city


def form(api: Api, **over: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "api_key": api.key,
        "service_code": "garbage",
        "lat": POINT_A["lat"],
        "long": POINT_A["lon"],
        "description": "sampah menumpuk",
    }
    fields.update(over)
    return {k: v for k, v in fields.items() if v is not None}


def post(api: Api, fmt: str = "json", **over: object) -> httpx.Response:
    return api.client.post(f"{V2}/requests.{fmt}", data=form(api, **over))


def stored(api: Api) -> list[dict[str, Any]]:
    engine = make_engine(api.settings.database_url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(reports)).mappings()]
    engine.dispose()
    return rows


def xml_of(r: httpx.Response) -> ET.Element:
    assert r.headers["content-type"].startswith("text/xml")
    return ET.fromstring(r.content)


def assert_error_json(r: httpx.Response, status: int, text: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body, list)
    assert len(body) == 1
    assert body[0]["code"] == status
    assert text in body[0]["description"]


def assert_error_xml(r: httpx.Response, status: int, text: str = "") -> None:
    assert r.status_code == status, r.text
    root = xml_of(r)
    assert root.tag == "errors"
    errors = root.findall("error")
    assert len(errors) == 1
    assert errors[0].findtext("code") == str(status)
    assert text in (errors[0].findtext("description") or "")


def iso(at: datetime) -> str:
    return at.isoformat()


# --- discovery and services -------------------------------------------------------------------


def test_discovery_json_and_xml(api: Api) -> None:
    d = api.client.get(f"{V2}/discovery.json")
    assert d.status_code == 200
    body = d.json()
    assert {"changeset", "contact", "key_service", "endpoints"} <= body.keys()
    endpoint = body["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["formats"] == ["text/xml", "application/json"]

    root = xml_of(api.client.get(f"{V2}/discovery.xml"))
    assert root.tag == "discovery"
    formats = [f.text for f in root.findall("endpoints/endpoint/formats/format")]
    assert formats == ["text/xml", "application/json"]


def test_services_json_and_xml(api: Api) -> None:
    services = api.client.get(f"{V2}/services.json").json()
    assert [s["service_code"] for s in services] == list(CATEGORIES)
    garbage = next(s for s in services if s["service_code"] == "garbage")
    assert garbage["service_name"] == "Sampah"
    assert garbage["description"] == "Garbage"
    assert garbage["metadata"] is False
    assert garbage["type"] == "realtime"
    assert garbage["keywords"]
    assert garbage["group"]

    root = xml_of(api.client.get(f"{V2}/services.xml"))
    assert root.tag == "services"
    items = root.findall("service")
    assert len(items) == len(CATEGORIES)
    assert items[0].findtext("metadata") == "false"
    assert {i.findtext("service_code") for i in items} == set(CATEGORIES)


def test_service_definition(api: Api) -> None:
    d = api.client.get(f"{V2}/services/flood.json")
    assert d.status_code == 200
    assert d.json() == {"service_code": "flood", "attributes": []}
    root = xml_of(api.client.get(f"{V2}/services/flood.xml"))
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "flood"
    assert root.find("attributes") is not None
    assert_error_json(api.client.get(f"{V2}/services/nope.json"), 404, "unknown service_code")
    assert_error_xml(api.client.get(f"{V2}/services/nope.xml"), 404, "unknown service_code")


def test_unknown_format_is_404(api: Api) -> None:
    assert_error_json(api.client.get(f"{V2}/services.csv"), 404, "unknown format")
    assert_error_json(api.client.get(f"{V2}/requests/1.html"), 404, "unknown format")
    assert_error_json(api.client.get(f"{V2}/services"), 404)
    r = api.client.post(f"{V2}/requests.yaml", data=form(api))
    assert_error_json(r, 404, "unknown format")
    assert stored(api) == []


# --- POST and GET requests ----------------------------------------------------------------------


def test_post_then_get_json_and_xml(api: Api) -> None:
    r = post(api, media_url="https://example.org/a.jpg", address_string="Jl. Satu No. 1")
    assert r.status_code == 201, r.text
    [created] = r.json()
    rid = created["service_request_id"]
    assert isinstance(rid, str)
    assert "service_notice" in created
    assert created["account_id"] is None
    [row] = stored(api)
    assert row["channel"] == "jaki"
    assert row["kelurahan_code"] == KEL_A
    assert row["media_url"] == "https://example.org/a.jpg"

    [item] = api.client.get(f"{V2}/requests/{rid}.json").json()
    assert item["service_request_id"] == rid
    assert item["status"] == "open"
    assert item["jakarta_status"] == "Menunggu"
    assert item["status_notes"] == "received"
    assert item["service_code"] == "garbage"
    assert item["service_name"] == "Sampah"
    assert item["description"] == "sampah menumpuk"
    assert item["kelurahan_code"] == KEL_A
    assert item["address"] == "Jl. Satu No. 1"
    assert item["lat"] == POINT_A["lat"]
    assert item["long"] == POINT_A["lon"]
    assert item["media_url"] == "https://example.org/a.jpg"
    assert item["agency_responsible"]
    for name in ("requested_datetime", "updated_datetime"):
        assert datetime.fromisoformat(item[name]).tzinfo is not None
    for name in ("expected_datetime", "address_id", "zipcode", "service_notice"):
        assert name in item

    root = xml_of(api.client.get(f"{V2}/requests/{rid}.xml"))
    assert root.tag == "service_requests"
    [request] = root.findall("request")
    assert request.findtext("service_request_id") == rid
    assert request.findtext("status") == "open"
    assert request.findtext("jakarta_status") == "Menunggu"
    assert float(request.findtext("lat") or "nan") == POINT_A["lat"]
    assert request.findtext("expected_datetime") == ""


def test_post_xml_multipart_and_account_id(api: Api) -> None:
    fields = {k: str(v) for k, v in form(api, account_id="acc-7").items()}
    r = api.client.post(
        f"{V2}/requests.xml", data=fields, files={"unused": ("x.txt", b"x", "text/plain")}
    )
    assert r.status_code == 201, r.text
    root = xml_of(r)
    assert root.tag == "service_requests"
    assert root.findtext("request/account_id") == "acc-7"
    assert root.findtext("request/service_request_id") == str(stored(api)[0]["id"])


def test_post_by_kelurahan_name(api: Api) -> None:
    r = post(api, lat=None, long=None, address_string="Jalan Mawar 3, kelurahan LIMA, Jakarta")
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    [item] = api.client.get(f"{V2}/requests/{rid}.json").json()
    assert item["kelurahan_code"] == KEL_LIMA
    assert item["lat"] == pytest.approx(-6.185)
    assert item["long"] == pytest.approx(106.825)

    missing = post(api, lat=None, long=None, address_string="Jalan Mawar 3, Bandung")
    assert_error_json(missing, 400, "address_string could not be located")
    nothing = post(api, lat=None, long=None)
    assert_error_json(nothing, 400, "location is required")
    assert len(stored(api)) == 1


def test_idempotency_key(api: Api) -> None:
    headers = {"Idempotency-Key": "o311-1"}
    first = api.client.post(f"{V2}/requests.json", data=form(api), headers=headers)
    again = api.client.post(f"{V2}/requests.json", data=form(api), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()[0]["service_request_id"] == first.json()[0]["service_request_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = api.client.post(
        f"{V2}/requests.json", data=form(api, description="lain"), headers=headers
    )
    assert_error_json(other, 400, "different request body")
    bad = api.client.post(f"{V2}/requests.json", data=form(api), headers={"Idempotency-Key": "a b"})
    assert_error_json(bad, 400, "Idempotency-Key")
    assert len(stored(api)) == 1


def test_list_filters_and_paging(api: Api) -> None:
    ids = []
    for code in ("garbage", "roads", "garbage"):
        r = post(api, service_code=code)
        assert r.status_code == 201, r.text
        ids.append(r.json()[0]["service_request_id"])
    newest_first = ids[::-1]

    def listed(**params: object) -> list[str]:
        r = api.client.get(f"{V2}/requests.json", params=params)
        assert r.status_code == 200, r.text
        return [i["service_request_id"] for i in r.json()]

    assert listed() == newest_first
    assert listed(service_code="garbage") == [ids[2], ids[0]]
    assert listed(service_code="roads,flood") == [ids[1]]
    assert listed(status="open") == newest_first
    assert listed(status="closed") == []
    assert listed(status="open,closed") == newest_first
    assert listed(page_size=2) == newest_first[:2]
    assert listed(page_size=2, page=2) == newest_first[2:]
    assert listed(page=5) == []
    assert listed(service_request_id=f"{ids[0]},{ids[2]},999999") == [ids[2], ids[0]]

    now = datetime.now(UTC)
    jakarta = now.astimezone(timezone(timedelta(hours=7)))
    assert listed(start_date=iso(now - timedelta(hours=1))) == newest_first
    assert listed(end_date=iso(now + timedelta(hours=1))) == newest_first
    assert (
        listed(start_date=iso(jakarta - timedelta(days=1)), end_date=iso(now + timedelta(days=1)))
        == newest_first
    )
    assert (
        listed(start_date=iso(now - timedelta(days=30)), end_date=iso(now - timedelta(days=1)))
        == []
    )
    assert listed(start_date="2020-01-01T00:00:00Z", end_date="2020-03-01T00:00:00+07:00") == []
    unencoded = (jakarta - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S 07:00")  # '+' lost
    assert listed(start_date=unencoded) == newest_first

    root = xml_of(api.client.get(f"{V2}/requests.xml", params={"service_code": "roads"}))
    assert [r.findtext("service_request_id") for r in root.findall("request")] == [ids[1]]


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "90 days"),
        ({"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "before"),
        ({"start_date": "yesterday"}, "ISO 8601"),
        ({"end_date": "2026-13-01T00:00:00Z"}, "ISO 8601"),
        ({"start_date": "2026-01-01T00:00:00"}, "timezone"),
        ({"start_date": "0001-01-01T00:00:00+05:00"}, "out of range"),
        ({"status": "pending"}, "status"),
        ({"service_code": "nope"}, "unknown service_code"),
        ({"service_request_id": "1,abc"}, "service_request_id"),
        ({"page": 0}, "page"),
        ({"page_size": 1001}, "page_size"),
    ],
)
def test_list_errors(api: Api, params: dict[str, object], text: str) -> None:
    assert_error_json(api.client.get(f"{V2}/requests.json", params=params), 400, text)
    assert_error_xml(api.client.get(f"{V2}/requests.xml", params=params), 400, text)


def test_get_unknown_request_is_404(api: Api) -> None:
    for rid in ("12345", "abc", "99999999999", "-1"):
        assert_error_json(api.client.get(f"{V2}/requests/{rid}.json"), 404)
    assert_error_xml(api.client.get(f"{V2}/requests/12345.xml"), 404, "no service request")


def test_tokens(api: Api) -> None:
    created = post(api).json()[0]
    token = created["token"]
    assert stored(api)[0]["token"] == token
    got = api.client.get(f"{V2}/tokens/{token}.json")
    assert got.status_code == 200
    assert got.json() == [{"service_request_id": created["service_request_id"], "token": token}]
    root = xml_of(api.client.get(f"{V2}/tokens/{token}.xml"))
    assert root.findtext("request/service_request_id") == created["service_request_id"]
    assert root.findtext("request/token") == token
    assert_error_json(api.client.get(f"{V2}/tokens/not-a-token.json"), 404, "token")
    assert_error_xml(api.client.get(f"{V2}/tokens/{'x' * 80}.xml"), 404, "token")


# --- POST errors: nothing stored ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "status", "text"),
    [
        ({"api_key": None}, 403, "api_key is required"),
        ({"api_key": "key_wrong"}, 403, "invalid"),
        ({"service_code": None}, 400, "service_code is required"),
        ({"service_code": "potholes"}, 400, "unknown service_code"),
        ({"lat": -6.9, "long": 107.6}, 400, "outside Jakarta"),  # Bandung
        ({"long": None}, 400, "both lat and long"),
        ({"lat": None}, 400, "both lat and long"),
        ({"lat": "nan"}, 400, "decimal number"),
        ({"lat": "inf"}, 400, "decimal number"),
        ({"lat": "1e400"}, 400, "within"),
        ({"lat": "-6.19x"}, 400, "decimal number"),
        ({"lat": 95}, 400, "within"),
        ({"long": 200}, 400, "within"),
        ({"description": "x" * 4001}, 400, "longer than 4000"),
        ({"description": "bad\x00byte"}, 400, "control characters"),
        ({"email": "not-an-email"}, 400, "email"),
        ({"phone": "call me"}, 400, "phone"),
        ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
    ],
)
def test_post_errors_store_nothing(
    api: Api, over: dict[str, object], status: int, text: str
) -> None:
    assert_error_json(post(api, **over), status, text)
    assert_error_xml(post(api, "xml", **over), status, text)
    assert stored(api) == []


def test_post_needs_form_encoding(api: Api) -> None:
    r = api.client.post(f"{V2}/requests.json", json=form(api))
    assert_error_json(r, 400, "form-urlencoded")
    repeated = api.client.post(
        f"{V2}/requests.json",
        content=f"api_key={api.key}&service_code=garbage&service_code=roads&lat=-6.195&long=106.805",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error_json(repeated, 400, "more than once")
    assert stored(api) == []


def test_validation_422_becomes_400_and_other_statuses_pass(api: Api) -> None:
    assert_error_json(api.client.get(f"{V2}/requests.json", params={"page": "x"}), 400)
    r = api.client.delete(f"{V2}/services.json")
    assert r.status_code == 405
    assert r.json()[0]["code"] == 405


# --- privacy --------------------------------------------------------------------------------------


def test_reporter_contact_never_published(api: Api) -> None:
    sentinels = {
        "email": "sentinel.mail@example.org",
        "phone": "+62 811 5550 1234",
        "first_name": "Sentinelfirst",
        "last_name": "Sentinellast",
        "device_id": "sentinel-device-77",
    }
    r = post(api, **sentinels)
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    [row] = stored(api)
    assert row["reporter_name"] == "Sentinelfirst Sentinellast"
    assert row["reporter_email"] == sentinels["email"]
    assert row["reporter_phone"] == sentinels["phone"]
    assert row["device_id"] == sentinels["device_id"]
    token = r.json()[0]["token"]
    for fmt in ("json", "xml"):
        responses = [
            api.client.get(f"{V2}/requests/{rid}.{fmt}"),
            api.client.get(f"{V2}/requests.{fmt}"),
            api.client.get(f"{V2}/requests.{fmt}", params={"service_request_id": rid}),
            api.client.get(f"{V2}/tokens/{token}.{fmt}"),
        ]
        for got in responses:
            assert got.status_code == 200
            assert rid in got.text
            for value in sentinels.values():
                assert value not in got.text
                assert value.lower() not in got.text.lower()


def test_xml_escapes_text(api: Api) -> None:
    text = "<b>&\"'</b> ]]> café"
    r = post(api, description=text)
    rid = r.json()[0]["service_request_id"]
    root = xml_of(api.client.get(f"{V2}/requests/{rid}.xml"))
    assert root.findtext("request/description") == text
