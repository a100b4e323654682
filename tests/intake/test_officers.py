"""Officers and coordinators: queue, claim race, resolve with a photo, scoping, refusals."""

from __future__ import annotations

import io
import re
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from intake import photos, workflow
from intake.db import make_engine, reports
from intake.errors import ApiError
from intake.store import create_officer
from tests.intake.conftest import KEL_A, KEL_B, POINT_A, POINT_B, Api

GPS_TAG = 34853
ORIENTATION_TAG = 0x0112


def post_report(api: Api, point: dict[str, float] = POINT_A) -> str:
    """A new report at `point`; returns its id."""
    body = {"category": "garbage", **point, "description": "sampah menumpuk"}
    r = api.client.post("/api/v1/reports", json=body, headers=api.headers())
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def new_officer(api: Api, *, kelurahan_code: str = KEL_A, role: str = "officer") -> str:
    """Another officer's bearer token."""
    engine = make_engine(api.settings.database_url)
    with engine.begin() as conn:
        _, token = create_officer(conn, kelurahan_code=kelurahan_code, role=role)
    engine.dispose()
    return token


def stored(api: Api, report_id: str) -> dict[str, Any]:
    """The report's row as stored."""
    engine = make_engine(api.settings.database_url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(reports).where(reports.c.id == int(report_id))).mappings()
        out = dict(row.one())
    engine.dispose()
    return out


def media_files(api: Api) -> list[Path]:
    """Every file in the media directory, temporary ones included."""
    media = api.settings.media_dir
    return sorted(media.iterdir()) if media.exists() else []


def jpeg_with_gps(size: tuple[int, int] = (64, 48)) -> bytes:
    """A small JPEG carrying EXIF GPS coordinates and an orientation (rotate 90 degrees)."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    exif[GPS_TAG] = {1: "S", 2: (6.0, 11.0, 42.0), 3: "E", 4: (106.0, 48.0, 18.0)}
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, "JPEG", exif=exif.tobytes())
    data = out.getvalue()
    assert b"Exif" in data
    return data


def png_with_text(size: tuple[int, int] = (40, 30)) -> bytes:
    """A small PNG carrying a text chunk (metadata to strip)."""
    info = PngInfo()
    info.add_text("Comment", "taken at home, Jl. Rahasia 7")
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 120, 200, 255)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG claiming `width` x `height` pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        photos.PNG_MAGIC
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + chunk(b"IEND", b"")
    )


def claim(api: Api, report_id: str, token: str) -> Any:
    return api.client.post(f"/api/v1/officer/reports/{report_id}/claim", headers=api.bearer(token))


def resolve(
    api: Api,
    report_id: str,
    token: str,
    data: bytes | None,
    *,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
) -> Any:
    files = {"photo": (filename, data, content_type)} if data is not None else None
    return api.client.post(
        f"/api/v1/officer/reports/{report_id}/resolve",
        files=files,
        data={"note": "sudah dibersihkan"},
        headers=api.bearer(token),
    )


def coordinator_post(api: Api, report_id: str, action: str, token: str, **body: str) -> Any:
    return api.client.post(
        f"/api/v1/coordinator/reports/{report_id}/{action}",
        json=body or None,
        headers=api.bearer(token),
    )


def test_queue_is_scoped_open_oldest_first_and_paged(api: Api) -> None:
    ids_a = [post_report(api) for _ in range(3)]
    id_b = post_report(api, POINT_B)
    queue = api.client.get("/api/v1/officer/queue", headers=api.bearer(api.officer))
    assert queue.status_code == 200, queue.text
    assert queue.json()["count"] == 3
    assert [r["id"] for r in queue.json()["data"]] == ids_a
    page = api.client.get(
        "/api/v1/officer/queue", params={"page": 2, "page_size": 2}, headers=api.bearer(api.officer)
    )
    assert [r["id"] for r in page.json()["data"]] == ids_a[2:]
    assert page.json()["count"] == 3
    too_big = api.client.get(
        "/api/v1/officer/queue", params={"page_size": 201}, headers=api.bearer(api.officer)
    )
    assert too_big.status_code == 422
    queue_b = api.client.get("/api/v1/officer/queue", headers=api.bearer(api.officer_b)).json()
    assert [r["id"] for r in queue_b["data"]] == [id_b]
    assert "reporter" not in str(queue_b)
    assert api.client.get("/api/v1/officer/queue").status_code == 401


def test_claim_race_has_exactly_one_winner(api: Api) -> None:
    report_id = post_report(api)
    tokens = [new_officer(api) for _ in range(6)]
    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        codes = list(pool.map(lambda t: claim(api, report_id, t).status_code, tokens))
    assert sorted(codes) == [200] + [409] * (len(tokens) - 1)
    history = api.client.get(f"/api/v1/reports/{report_id}", headers=api.headers()).json()[
        "history"
    ]
    assert [h["status"] for h in history] == ["menunggu", "proses"]
    winner = stored(api, report_id)["claimed_by"]
    assert winner is not None
    assert claim(api, report_id, api.officer).status_code == 409
    # the kelurahan's officers see who holds it; the public does not
    seen = api.client.get(f"/api/v1/officer/reports/{report_id}", headers=api.bearer(api.officer))
    assert seen.json()["claimed_by"] == winner
    queue = api.client.get("/api/v1/officer/queue", headers=api.bearer(api.officer)).json()
    assert {r["id"]: r["claimed_by"] for r in queue["data"]}[report_id] == winner
    assert (
        "claimed_by"
        not in api.client.get(f"/api/v1/reports/{report_id}", headers=api.headers()).json()
    )


def test_other_kelurahan_is_404_like_a_missing_report(api: Api) -> None:
    report_id = post_report(api)
    coordinator_b = new_officer(api, kelurahan_code=KEL_B, role="coordinator")
    missing = claim(api, "999999", api.officer_b)
    assert missing.status_code == 404
    foreign = claim(api, report_id, api.officer_b)
    assert foreign.status_code == 404
    assert foreign.json()["detail"] == missing.json()["detail"].replace("999999", report_id)
    get = api.client.get(f"/api/v1/officer/reports/{report_id}", headers=api.bearer(api.officer_b))
    assert get.status_code == 404
    for action, body in [("coordinate", {}), ("dispatch", {"crew": "PPSU 1"}),
                         ("handover", {"agency": "Dinas LH"})]:  # fmt: skip
        r = coordinator_post(api, report_id, action, coordinator_b, **body)
        assert r.status_code == 404, (action, r.text)
    assert claim(api, report_id, api.officer).status_code == 200
    r = resolve(api, report_id, api.officer_b, jpeg_with_gps())
    assert r.status_code == 404
    assert stored(api, report_id)["status"] == "proses"
    assert media_files(api) == []
    own = api.client.get(f"/api/v1/officer/reports/{report_id}", headers=api.bearer(api.officer))
    assert own.status_code == 200
    assert [h["status"] for h in own.json()["history"]] == ["menunggu", "proses"]


def test_resolve_strips_metadata_and_chooses_the_name(api: Api) -> None:
    report_id = post_report(api)
    assert claim(api, report_id, api.officer).status_code == 200
    r = resolve(api, report_id, api.officer, jpeg_with_gps(), filename="../../etc/evil.jpg")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "selesai"
    assert r.json()["closed_at"] is not None
    row = stored(api, report_id)
    assert re.fullmatch(r"[0-9a-f]{32}\.jpg", row["photo_path"])
    assert media_files(api) == [api.settings.media_dir / row["photo_path"]]
    data = (api.settings.media_dir / row["photo_path"]).read_bytes()
    assert b"Exif" not in data
    assert b"evil" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert len(image.getexif()) == 0
        assert "exif" not in image.info
        assert "icc_profile" not in image.info
        assert image.size == (48, 64)  # turned upright by the EXIF orientation
    history = api.client.get(f"/api/v1/reports/{report_id}", headers=api.headers()).json()[
        "history"
    ]
    assert history[-1] == {**history[-1], "status": "selesai", "note": "sudah dibersihkan"}
    queue = api.client.get("/api/v1/officer/queue", headers=api.bearer(api.officer)).json()
    assert queue["count"] == 0
    assert resolve(api, report_id, api.officer, jpeg_with_gps()).status_code == 409


def test_resolve_png_stays_png_without_text(api: Api) -> None:
    report_id = post_report(api)
    assert claim(api, report_id, api.officer).status_code == 200
    r = resolve(api, report_id, api.officer, png_with_text(), filename="x.jpg")
    assert r.status_code == 200, r.text
    name = stored(api, report_id)["photo_path"]
    assert name.endswith(".png")
    data = (api.settings.media_dir / name).read_bytes()
    assert b"Rahasia" not in data
    assert b"tEXt" not in data


def test_refused_photos_change_nothing(api: Api) -> None:
    report_id = post_report(api)
    assert claim(api, report_id, api.officer).status_code == 200
    good = jpeg_with_gps()
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    cases: list[tuple[bytes | None, set[int], str]] = [
        (b"just some text, not a photo\n" * 10, {415}, "JPEG or PNG"),
        (gif.getvalue(), {415}, "JPEG or PNG"),
        (good[: len(good) // 2], {422}, "corrupt or truncated"),
        (good[:-2], {422}, "corrupt or truncated"),
        (photos.JPEG_MAGIC + b"\x00" * api.settings.max_photo_bytes, {413}, "bytes"),
        (png_header_only(7000, 7000), {413}, "pixels"),  # 49 Mpx in a tiny file
        (png_header_only(20000, 20000), {413}, ""),  # Pillow's own bomb limit
        (b"", {422}, "empty"),
        (None, {422}, "photo"),
    ]
    for data, codes, message in cases:
        r = resolve(api, report_id, api.officer, data)
        assert r.status_code in codes, (data[:20] if data else data, r.text)
        assert message in r.json()["detail"]
        assert media_files(api) == []
        row = stored(api, report_id)
        assert (row["status"], row["photo_path"], row["closed_at"]) == ("proses", None, None)


def test_only_the_claimant_resolves(api: Api) -> None:
    report_id = post_report(api)
    unclaimed = resolve(api, report_id, api.officer, jpeg_with_gps())
    assert unclaimed.status_code == 409
    assert "claim it first" in unclaimed.json()["detail"]
    assert claim(api, report_id, api.officer).status_code == 200
    colleague = new_officer(api)
    r = resolve(api, report_id, colleague, jpeg_with_gps())
    assert r.status_code == 403
    assert "claimed by another officer" in r.json()["detail"]
    assert stored(api, report_id)["status"] == "proses"
    assert media_files(api) == []


def test_failed_database_update_removes_the_photo(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_id = post_report(api)
    assert claim(api, report_id, api.officer).status_code == 200

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(workflow, "resolve", broken)
    r = resolve(api, report_id, api.officer, jpeg_with_gps())
    assert r.status_code == 500
    assert media_files(api) == []
    assert stored(api, report_id)["status"] == "proses"


def test_coordinator_flow(api: Api) -> None:
    first, second = post_report(api), post_report(api)
    r = coordinator_post(api, first, "coordinate", api.coordinator)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "koordinasi"
    coordinated_at = r.json()["coordinated_at"]
    assert coordinated_at is not None
    assert coordinator_post(api, first, "coordinate", api.coordinator).status_code == 409
    r = coordinator_post(api, first, "dispatch", api.coordinator, crew="PPSU Kel. A 3")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["crew"]) == ("disposisi", "PPSU Kel. A 3")
    assert r.json()["coordinated_at"] == coordinated_at  # kept, not reset
    again = coordinator_post(api, first, "handover", api.coordinator, agency="Dinas SDA")
    assert again.status_code == 409

    r = coordinator_post(api, second, "handover", api.coordinator, agency="Dinas Bina Marga")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["agency"]) == ("disposisi", "Dinas Bina Marga")
    assert r.json()["coordinated_at"] is not None  # set on the way
    assert claim(api, second, api.officer).status_code == 200

    third = post_report(api)
    for body in ({"crew": ""}, {"crew": "   "}, {"crew": "x" * 101}, {},
                 {"crew": "A", "status": "selesai"}):  # fmt: skip
        r = coordinator_post(api, third, "dispatch", api.coordinator, **body)
        assert r.status_code == 422, (body, r.text)
    for action, body in [("coordinate", {}), ("dispatch", {"crew": "A"}),
                         ("handover", {"agency": "B"})]:  # fmt: skip
        r = coordinator_post(api, third, action, api.officer, **body)
        assert r.status_code == 403, (action, r.text)
    assert stored(api, third)["status"] == "menunggu"
    history = api.client.get(f"/api/v1/reports/{first}", headers=api.headers()).json()["history"]
    assert [h["status"] for h in history] == ["menunggu", "koordinasi", "disposisi"]


def test_photo_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("L", (1000, 1000)).save(out, "PNG", optimize=True)
    data = out.getvalue()
    assert len(data) < 5000  # a million pixels in a few kilobytes
    with pytest.raises(ApiError) as refused:
        photos.store_photo(data, media_dir=tmp_path, max_bytes=10_000, max_pixels=999_999)
    assert refused.value.status == 413
    assert list(tmp_path.iterdir()) == []
    name = photos.store_photo(data, media_dir=tmp_path, max_bytes=10_000, max_pixels=1_000_000)
    assert [p.name for p in tmp_path.iterdir()] == [name]
