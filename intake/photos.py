"""Proof photos: checked by content, stripped of metadata, stored under a server-chosen name.

A photo is recognised as JPEG or PNG by its magic bytes (the declared content type and file name
are ignored), refused over the byte limit, refused over the pixel limit before any pixel is
decoded (the header gives the size), decoded fully (a truncated or corrupt file is refused),
turned upright by its EXIF orientation and re-encoded without any metadata: no EXIF (so no GPS
position of the reporter or officer), no XMP, no ICC profile, no text chunks. The file is written
to a temporary name and renamed, so a reader never sees half a photo.

Memory is bounded before anything is allocated. A photo is stored at most `MAX_SIDE` pixels on its
longer side (enough to see the work done), so a JPEG is decoded at a reduced scale straight away
(libjpeg's DCT scaling, Pillow's ``draft``); what the decoder will allocate is estimated from
the header (`decode_bytes`) and a photo over the budget is refused with 413. Unbounded before:
one 116 KB PNG of 6300x6300 pixels took 720 MB and 2 s.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps

from intake.errors import ApiError

MAX_SIDE = 2048  # longer side of a stored photo, pixels
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_limited(stream: BinaryIO, *, max_bytes: int) -> bytes:
    """Read an upload, refusing it with 413 as soon as it exceeds `max_bytes`.

    Parameters
    ----------
    stream
        The uploaded file.
    max_bytes
        Largest photo accepted.

    Returns
    -------
    data
        The whole upload.
    """
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, f"the photo is over {max_bytes} bytes")
    if not data:
        raise ApiError(422, "photo: the uploaded file is empty")
    return data


def sniff_format(data: bytes) -> str:
    """``"JPEG"`` or ``"PNG"`` from the magic bytes; 415 for anything else."""
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data.startswith(PNG_MAGIC):
        return "PNG"
    raise ApiError(
        415,
        "the photo must be a JPEG or PNG image (recognised by its content, "
        "not by its name or declared type)",
    )


def decode_bytes(image: Image.Image, fmt: str, full_size: tuple[int, int]) -> int:
    """Bytes the decoder allocates for `image` (opened, after any ``draft``), from its header.

    Pillow keeps 1 byte per pixel for modes ``1``, ``L`` and ``P`` and 4 for every other mode;
    an image with transparency is premultiplied into a second full-size copy when it is scaled
    down. A progressive JPEG is decoded from coefficient buffers that libjpeg keeps for the
    whole picture whatever the scale: 2 bytes per component and pixel at full size. (Measured
    peak on top of this estimate: about 1.6x, from the scaled copy and the encoder.)
    """
    width, height = image.size
    needed = width * height * (1 if image.mode in ("1", "L", "P") else 4)
    if "A" in image.getbands() or "transparency" in image.info:
        needed *= 2
    if fmt == "JPEG" and (image.info.get("progressive") or image.info.get("progression")):
        needed += full_size[0] * full_size[1] * len(image.getbands()) * 2
    return needed


def clean_image(
    data: bytes, *, max_pixels: int, max_decode_bytes: int = 96 * 2**20
) -> tuple[Image.Image, str]:
    """Decode a photo within the limits and return it upright, without metadata.

    Parameters
    ----------
    data
        The uploaded bytes.
    max_pixels
        Largest width * height accepted (checked from the header, before decoding).
    max_decode_bytes
        Most memory the decoder may allocate (estimated from the header, see `decode_bytes`).

    Returns
    -------
    image, fmt
        A fresh image, at most `MAX_SIDE` pixels on its longer side, carrying no metadata, and
        ``"JPEG"`` or ``"PNG"`` (the input format).

    Raises
    ------
    ApiError
        415 not JPEG/PNG, 413 too many pixels, too much memory to decode or a decompression
        bomb, 422 corrupt or truncated.
    """
    fmt = sniff_format(data)
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as probe:
            width, height = probe.size  # from the header: nothing decoded yet
            if width * height > max_pixels:
                raise ApiError(
                    413, f"the photo is {width}x{height} pixels: at most {max_pixels} are accepted"
                )
            probe.verify()  # structure and checksums, still without decoding pixels
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:
            if fmt == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale when that still covers MAX_SIDE
                image.draft(None, (MAX_SIDE, MAX_SIDE))
            needed = decode_bytes(image, fmt, (width, height))
            if needed > max_decode_bytes:
                raise ApiError(
                    413,
                    f"the photo ({width}x{height} pixels, {fmt}) needs {needed // 2**20} MB to "
                    f"decode: at most {max_decode_bytes // 2**20} MB; send a smaller photo",
                )
            image.load()
            image.thumbnail((MAX_SIDE, MAX_SIDE))  # in place; the large buffer is released
            upright = ImageOps.exif_transpose(image)
            alpha = "A" in upright.getbands() or "transparency" in upright.info
            if fmt == "JPEG":
                mode = "L" if upright.mode == "L" else "RGB"
            else:
                mode = "L" if upright.mode == "L" else ("RGBA" if alpha else "RGB")
            converted = upright.convert(mode)
            clean = Image.frombytes(mode, converted.size, converted.tobytes())  # no info, no exif
    except ApiError:
        raise
    except Image.DecompressionBombError as exc:
        raise ApiError(413, "the photo is refused as a decompression bomb") from exc
    except Exception as exc:  # Pillow raises many kinds on malformed input: all mean "corrupt"
        raise ApiError(422, f"the photo is corrupt or truncated ({type(exc).__name__})") from exc
    return clean, fmt


def encode(image: Image.Image, fmt: str) -> bytes:
    """JPEG (quality 90) or PNG bytes of `image`, with no metadata."""
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=90, optimize=True)
    else:
        image.save(out, "PNG", optimize=True)
    return out.getvalue()


def write_atomically(directory: Path, name: str, data: bytes) -> None:
    """Write `data` to ``directory/name`` through a temporary file and a rename."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_photo(
    data: bytes,
    *,
    media_dir: Path,
    max_bytes: int,
    max_pixels: int,
    max_decode_bytes: int = 96 * 2**20,
) -> str:
    """Check, clean and store a proof photo; return its stored name (relative to `media_dir`).

    The name is chosen by the server (``uuid4`` hex and ``.jpg`` or ``.png``); the client's file
    name is never used.

    Raises
    ------
    ApiError
        413 over the byte, pixel or decoding-memory limit, 415 not JPEG/PNG, 422 corrupt or
        truncated.
    """
    if len(data) > max_bytes:
        raise ApiError(413, f"the photo is over {max_bytes} bytes")
    image, fmt = clean_image(data, max_pixels=max_pixels, max_decode_bytes=max_decode_bytes)
    name = uuid.uuid4().hex + (".jpg" if fmt == "JPEG" else ".png")
    write_atomically(media_dir, name, encode(image, fmt))
    return name


def remove_photo(media_dir: Path, name: str) -> None:
    """Delete a stored photo (when the database refused the change it belonged to)."""
    (media_dir / name).unlink(missing_ok=True)
