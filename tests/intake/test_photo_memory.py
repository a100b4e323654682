"""Photo decoding has bounded memory: 20 concurrent worst-case uploads against the real server.

The worst case accepted is a photo whose decoding needs just under the budget
(``Settings.max_photo_decode_bytes``, 96 MB): a 4890x4890 RGB PNG of a few hundred kilobytes.
Unbounded, one 6300x6300 PNG took 720 MB; six at once took the server from 265 MB to 4.2 GB.
Now at most ``photo_jobs`` (2) photos are decoded at a time, each within the budget, so the
server's resident memory may grow by at most `RSS_BOUND_MB` whatever the number of uploads.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import numpy as np
import psutil
import pytest
from PIL import Image

from intake import photos
from intake.bench import running_server
from intake.db import make_engine
from intake.errors import ApiError
from intake.store import create_officer
from tests.intake.conftest import KEL_A, POINT_A, sqlite_with_key

UPLOADS = 20
RSS_BOUND_MB = 400  # 2 jobs x about 1.6 x 96 MB, and the upload buffers


def worst_case_png() -> bytes:
    """4890x4890 RGB: 95.6 MB to decode (just under the budget), about 0.6 MB on the wire."""
    rng = np.random.default_rng(17)
    blocks = rng.integers(0, 255, (306, 306, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize((4890, 4890), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_twenty_concurrent_worst_case_photos_keep_memory_bounded(
    tmp_path: Path, synthetic_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, key = sqlite_with_key(tmp_path / "photos.db")
    engine = make_engine(url)
    with engine.begin() as conn:
        _, token = create_officer(conn, kelurahan_code=KEL_A, role="officer")
    engine.dispose()
    photo = worst_case_png()
    monkeypatch.setenv("INTAKE_MEDIA_DIR", str(tmp_path / "media"))
    # every upload waits for its turn (on a busy machine 20 photos take more than the default
    # 60 s): all 20 are decoded, the worst case for memory
    monkeypatch.setenv("INTAKE_PHOTO_WAIT_SECONDS", "600")
    officer = {"Authorization": f"Bearer {token}"}
    with (
        running_server(url, data_dir=str(synthetic_dir)) as (base, proc),
        httpx.Client(base_url=base, timeout=300) as client,
    ):
        ids = []
        for _ in range(UPLOADS):
            r = client.post(
                "/api/v1/reports",
                json={"category": "garbage", **POINT_A},
                headers={"X-API-Key": key},
            )
            ids.append(r.json()["id"])
            assert client.post(f"/api/v1/officer/reports/{ids[-1]}/claim", headers=officer)
        server = psutil.Process(proc.pid)
        baseline = server.memory_info().rss
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.01):
                peak = max(peak, server.memory_info().rss)

        def resolve(report_id: str) -> int:
            return client.post(
                f"/api/v1/officer/reports/{report_id}/resolve",
                files={"photo": ("p.png", photo, "image/png")},
                headers=officer,
            ).status_code

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with ThreadPoolExecutor(max_workers=UPLOADS) as pool:
                statuses = list(pool.map(resolve, ids))
        finally:
            done.set()
            sampler.join()
    grown_mb = (peak - baseline) / 2**20
    logging.getLogger(__name__).info(
        "RSS %.0f MB before, peak +%.0f MB with %d concurrent uploads",
        baseline / 2**20,
        grown_mb,
        UPLOADS,
    )
    assert statuses == [200] * UPLOADS
    assert grown_mb < RSS_BOUND_MB, f"RSS {baseline / 2**20:.0f} MB, peak +{grown_mb:.0f} MB"


def png_header(width: int, height: int, color_type: int) -> bytes:
    """A PNG that claims `width` x `height` 8-bit pixels of `color_type` (2 RGB, 6 RGBA)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return photos.PNG_MAGIC + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "needed_mb"),
    [
        (png_header(6300, 6300, 2), 151),  # the audit's PNG: 40 Mpx, under the pixel limit
        (png_header(4000, 4000, 6), 122),  # RGBA: a second, premultiplied copy to scale it
    ],
    ids=["rgb-6300", "rgba-4000"],
)
def test_a_photo_over_the_decoding_budget_is_refused_before_decoding(
    data: bytes, needed_mb: int
) -> None:
    with pytest.raises(ApiError) as refused:
        photos.clean_image(data, max_pixels=40_000_000, max_decode_bytes=96 * 2**20)
    assert refused.value.status == 413
    assert f"needs {needed_mb} MB to decode: at most 96 MB" in refused.value.message


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_stored_within_max_side(
    tmp_path: Path,
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (6000, 4000), (90, 140, 60)).save(out, "JPEG", quality=50)
    image, fmt = photos.clean_image(out.getvalue(), max_pixels=40_000_000)
    assert fmt == "JPEG"
    assert image.size == (photos.MAX_SIDE, photos.MAX_SIDE * 4000 // 6000)
    progressive = io.BytesIO()
    Image.new("RGB", (6000, 4000)).save(progressive, "JPEG", progressive=True)
    with pytest.raises(ApiError, match="MB to decode"):  # libjpeg keeps all its coefficients
        photos.clean_image(progressive.getvalue(), max_pixels=40_000_000)
