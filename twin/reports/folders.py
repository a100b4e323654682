"""Output folders that never overwrite earlier results without being asked, and never lose one.

A command claims its folder first (`claim_output_dir`); an earlier result it replaces is only set
aside, beside it, and the command line settles every claim when the command ends
(`settle_output_dirs`): kept if the command succeeded, and if it failed (bad input found late, a
crash, Ctrl-C) its partial output is removed and the earlier result put back.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from twin.errors import TwinError

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)

# a folder holding one of these was written by twin (and may be replaced with --overwrite)
MARKERS = ("summary.json", "provenance.json")
WRITING = ".twin-writing"  # in a folder a command is writing: locked while it runs


def slug(text: str) -> str:
    """A file-name-safe form of `text`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:80]  # no hidden or parent folder


def claim_output_dir(out: Path, *, overwrite: bool, inputs: Sequence[Path] = ()) -> Path:
    """Make `out` ready for a new result: refuse a non-empty folder unless `overwrite`, and even
    then replace only a folder twin wrote (one holding a summary or provenance file, or the
    remains of a command that was killed), never one another command is writing, nor one holding
    the command's own `inputs`. The earlier result is set aside until `settle_output_dirs`."""
    out = Path(os.path.abspath(out))
    if out == Path.cwd() or out.parent == out:
        raise TwinError(f"{out}: the current or root folder; choose a folder of its own for --out")
    if out.exists() and not out.is_dir():
        raise TwinError(f"{out}: exists and is not a folder; choose another --out")
    backup = None
    try:
        if out.is_dir() and any(out.iterdir()):
            _check_replaceable(out, overwrite, inputs)
            backup = out.with_name(f".{out.name}.replaced-{os.getpid()}-{secrets.token_hex(3)}")
            out.rename(backup)
        out.mkdir(parents=True, exist_ok=True)
        lock = os.open(out / WRITING, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:  # another command claimed it between our check and our lock
        _put_back(out, backup)
        raise TwinError(
            f"{out}: another twin command is writing this folder; choose another --out"
        ) from None
    except OSError as exc:
        _put_back(out, backup)
        raise TwinError(f"{out}: cannot write there ({exc.strerror})") from None
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.write(lock, f"{os.getpid()}\n".encode())
    _claimed.append((out, backup, lock))
    for stale in sorted(out.parent.glob(f".{out.name}.replaced-*")):
        if stale != backup:
            log.warning(
                "twin: note: %s holds a result of %s set aside by a command that was killed; "
                "rename it back to keep it, or delete it", stale, out.name,
            )  # fmt: skip
    return out


def _check_replaceable(out: Path, overwrite: bool, inputs: Sequence[Path]) -> None:
    writing = out / WRITING
    if writing.is_file():
        fd = os.open(writing, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while its command runs
        except BlockingIOError:
            raise TwinError(
                f"{out}: another twin command is writing this folder; choose another --out"
            ) from None
        finally:
            os.close(fd)
    if not overwrite:
        raise TwinError(
            f"{out}: folder exists and is not empty (an earlier result); "
            "pass --overwrite to replace it, or choose another --out"
        )
    if not writing.is_file() and not any((out / marker).is_file() for marker in MARKERS):
        raise TwinError(
            f"{out}: not an output folder of twin (no {' or '.join(MARKERS)}); "
            "refusing to replace it, choose another --out"
        )
    for path in inputs:
        if Path(os.path.abspath(path)).is_relative_to(out):
            raise TwinError(f"{out}: holds this command's input {path}; choose another --out")


def _put_back(out: Path, backup: Path | None) -> None:
    if backup is not None and backup.is_dir():
        if out.is_dir():
            shutil.rmtree(out, ignore_errors=True)
        backup.rename(out)


_claimed: list[tuple[Path, Path | None, int]] = []  # (folder, earlier result set aside, lock)


def settle_output_dirs(*, succeeded: bool) -> None:
    """End of a command: keep its folders and drop the results they replace; or, when it failed,
    remove what it wrote and put back the results it was to replace."""
    while _claimed:
        out, backup, lock = _claimed.pop()
        try:
            if succeeded:
                (out / WRITING).unlink(missing_ok=True)
                if backup is not None:
                    shutil.rmtree(backup, ignore_errors=True)
            else:
                shutil.rmtree(out, ignore_errors=True)
                try:
                    _put_back(out, backup)
                except OSError as exc:  # the earlier result stays where it was set aside
                    log.warning(
                        "twin: note: could not put %s back as %s (%s)", backup, out, exc.strerror
                    )
        finally:
            os.close(lock)
