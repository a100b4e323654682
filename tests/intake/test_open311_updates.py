"""Open311 update history: mySociety's servicerequestupdates and ``notes`` with extensions=true."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from tests.intake.conftest import Api
from tests.intake.test_officers import claim, coordinator_post, jpeg_with_gps, post_report, resolve

V2 = "/open311/v2"
UPDATE_FIELDS = [
    "update_id",
    "service_request_id",
    "status",
    "updated_datetime",
    "description",
    "media_url",
    "jakarta_status",
]


def worked_report(api: Api) -> str:
    """A report taken through its whole life: received, coordinated, claimed, resolved."""
    report_id = post_report(api)
    assert coordinator_post(api, report_id, "coordinate", api.coordinator).status_code == 200
    assert claim(api, report_id, api.officer).status_code == 200
    assert resolve(api, report_id, api.officer, jpeg_with_gps()).status_code == 200
    return report_id


def test_updates_list_every_status_change_in_order(api: Api) -> None:
    report_id = worked_report(api)
    other = post_report(api)
    r = api.client.get(f"{V2}/servicerequestupdates.json")
    assert r.status_code == 200, r.text
    mine = [u for u in r.json() if u["service_request_id"] == report_id]
    assert [u["jakarta_status"] for u in mine] == ["Menunggu", "Koordinasi", "Proses", "Selesai"]
    assert [u["status"] for u in mine] == ["open", "open", "open", "closed"]
    assert all(list(u) == UPDATE_FIELDS for u in r.json())
    ids = [int(u["update_id"]) for u in r.json()]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert mine[-1]["description"] == "sudah dibersihkan"
    photo = mine[-1]["media_url"]
    assert photo
    assert photo.startswith(api.settings.public_url + "/media/")
    assert all(u["media_url"] is None for u in mine[:-1])
    path = photo.removeprefix(api.settings.public_url)
    assert api.client.get(path).status_code == 200  # the served proof photo
    assert [u["service_request_id"] for u in r.json()].count(other) == 1


def test_updates_window_and_format(api: Api) -> None:
    worked_report(api)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = api.client.get(f"{V2}/servicerequestupdates.json", params={"start_date": future})
    assert r.status_code == 200
    assert r.json() == []
    r = api.client.get(f"{V2}/servicerequestupdates.xml")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "service_request_updates"
    items = root.findall("request_update")
    assert len(items) == 4
    assert items[-1].findtext("status") == "closed"
    r = api.client.get(
        f"{V2}/servicerequestupdates.json",
        params={"start_date": "2026-01-10T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
    )
    assert r.status_code == 400
    assert "before" in r.json()[0]["description"]
    r = api.client.get(f"{V2}/servicerequestupdates.json", params={"start_date": "yesterday"})
    assert r.status_code == 400
    assert api.client.get(f"{V2}/servicerequestupdates.csv").status_code == 404


def test_notes_only_with_extensions(api: Api) -> None:
    report_id = worked_report(api)
    plain = api.client.get(f"{V2}/requests/{report_id}.json").json()[0]
    assert "notes" not in plain
    item = api.client.get(f"{V2}/requests/{report_id}.json", params={"extensions": "true"}).json()[
        0
    ]
    notes = item["notes"]
    assert [n["type"] for n in notes] == ["opened", "activity", "activity", "closed"]
    assert notes[-1]["media_url"] == item["media_url"]
    assert notes[0]["description"] == "received"
    listed = api.client.get(f"{V2}/requests.json", params={"extensions": "true"}).json()
    assert [
        n["type"] for n in next(i for i in listed if i["service_request_id"] == report_id)["notes"]
    ] == ["opened", "activity", "activity", "closed"]
    root = ET.fromstring(
        api.client.get(f"{V2}/requests/{report_id}.xml", params={"extensions": "true"}).content
    )
    assert [n.findtext("type") for n in root.find("request").find("notes")] == [  # type: ignore[union-attr]
        "opened",
        "activity",
        "activity",
        "closed",
    ]
    assert "reporter" not in str(item)
    assert "email" not in str(item)
