"""Output folders that never overwrite earlier results without being asked."""

from __future__ import annotations

import re
import shutil
from typing import TYPE_CHECKING

from twin.errors import TwinError

if TYPE_CHECKING:
    from pathlib import Path

# a folder holding one of these was written by twin (and may be replaced with --overwrite)
MARKERS = ("summary.json", "provenance.json")


def slug(text: str) -> str:
    """A file-name-safe form of `text`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80]


def claim_output_dir(out: Path, *, overwrite: bool) -> Path:
    """Make `out` ready for a new result: refuse a non-empty folder unless `overwrite`, and even
    then replace only a folder twin wrote (one holding a summary or provenance file)."""
    if out.exists() and not out.is_dir():
        raise TwinError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise TwinError(
                f"{out}: folder exists and is not empty (an earlier result); "
                "pass --overwrite to replace it, or choose another --out"
            )
        if not any((out / marker).is_file() for marker in MARKERS):
            raise TwinError(
                f"{out}: not an output folder of twin (no {' or '.join(MARKERS)}); "
                "refusing to replace it, choose another --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out
