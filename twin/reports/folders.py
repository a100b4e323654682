"""Output folders that never overwrite earlier results without being asked, and never lose one.

A command claims its folder first (`claim_output_dir`); an earlier result it replaces is only set
aside, beside it, and the command line settles every claim when the command ends
(`settle_output_dirs`): kept if the command succeeded, and if it failed (bad input found late, a
crash, Ctrl-C) its partial output is removed and the earlier result put back.
"""

from __future__ import annotations

import os
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
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:80]  # no hidden or parent folder


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
        backup = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        shutil.rmtree(backup, ignore_errors=True)
        out.rename(backup)
        _claimed.append((out, backup))
    else:
        _claimed.append((out, None))
    out.mkdir(parents=True, exist_ok=True)
    return out


_claimed: list[tuple[Path, Path | None]] = []  # (folder, the earlier result set aside) this process


def settle_output_dirs(*, succeeded: bool) -> None:
    """End of a command: keep its folders and drop the results they replace; or, when it failed,
    remove what it wrote and put back the results it was to replace."""
    while _claimed:
        out, backup = _claimed.pop()
        if succeeded:
            if backup is not None:
                shutil.rmtree(backup, ignore_errors=True)
            continue
        shutil.rmtree(out, ignore_errors=True)
        if backup is not None:
            backup.rename(out)
