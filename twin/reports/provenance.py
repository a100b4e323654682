"""Where a result came from: the merged scenario, the command, seeds, code, data and libraries.

Every output folder records it (``summary.json`` of a run, ``provenance.json`` of a study), so a
researcher can tell which inputs made a figure, and `twin run --replay` can rerun a run exactly.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import platform
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from twin.city.datadir import PROJECT_ROOT, SOURCE_ROOT, file_digests, manifest_mismatches
from twin.errors import ScenarioError
from twin.experiments.variants import scenario_to_dict

if TYPE_CHECKING:
    from pathlib import Path

    from twin.model.scenario import Scenario

log = logging.getLogger(__name__)

PACKAGE = "jakarta-twin"
LIBRARIES = (
    "numpy", "pandas", "scipy", "simpy", "pyarrow", "networkx", "osmnx", "shapely",
    "geopandas", "matplotlib", "lifelines",
)  # fmt: skip


def package_version() -> str:
    """The installed version of this project (``unknown`` when run from an uninstalled tree)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def git_state() -> dict[str, Any] | None:
    """Commit and dirty flag of the source checkout, or None outside one (an installed package)."""
    if PROJECT_ROOT != SOURCE_ROOT or not (SOURCE_ROOT / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(SOURCE_ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(SOURCE_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries whose behaviour shapes the results."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def data_provenance(root: Path) -> dict[str, Any]:
    """The data directory, the SHA-256 of every input file, and any mismatch with its manifest.

    A mismatch is logged as a warning: a corrupted or edited input is reported, not ignored.
    """
    digests = file_digests(root)
    mismatches = manifest_mismatches(root, digests)
    for problem in mismatches:
        log.warning("data %s: %s", root, problem)
    combined = hashlib.sha256("".join(f"{k}={v};" for k, v in digests.items()).encode())
    return {
        "dir": str(root),
        "sha256": combined.hexdigest(),
        "files": digests,
        "manifest_mismatches": mismatches,
    }


def collect(
    scenarios: list[Scenario],
    *,
    data_dir: Path,
    started_at: datetime,
    seeds: list[int] | None = None,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """The provenance record of one run or study."""
    return {
        "command": " ".join(["twin", *(sys.argv[1:] if argv is None else argv)]),
        "started_at": started_at.astimezone(UTC).isoformat(timespec="seconds"),
        "package": {"name": PACKAGE, "version": package_version()},
        "git": git_state(),
        "libraries": library_versions(),
        "data": data_provenance(data_dir),
        "seeds": seeds if seeds is not None else [s.run.seed for s in scenarios],
        "scenarios": [scenario_to_dict(s) for s in scenarios],
    }


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def version_differences(recorded: dict[str, Any]) -> list[str]:
    """How the code and libraries that wrote `recorded` differ from this installation."""
    notes = []
    now_version, then_version = package_version(), recorded.get("package", {}).get("version")
    if then_version != now_version:
        notes.append(f"{PACKAGE} {then_version} wrote it, this is {now_version}")
    then_git, now_git = recorded.get("git") or {}, git_state() or {}
    if then_git.get("commit") and then_git.get("commit") != now_git.get("commit"):
        notes.append(
            f"code at commit {str(then_git['commit'])[:10]} wrote it, this is "
            f"{str(now_git.get('commit', 'an installed package'))[:10]}"
        )
    if then_git.get("dirty"):
        notes.append("it was written from a tree with uncommitted changes")
    now_libs = library_versions()
    for name, version in (recorded.get("libraries") or {}).items():
        if now_libs.get(name) != version:
            notes.append(
                f"{name} {version} wrote it, this is {now_libs.get(name, 'not installed')}"
            )
    return notes


def read_run_record(summary_path: Path) -> tuple[dict[str, Any], Scenario]:
    """A run's provenance (with its replication number) and its scenario, from its summary.json."""
    import json

    from twin.model.scenario import scenario_from_dict

    if not summary_path.is_file():
        raise ScenarioError(f"{summary_path}: no such summary file")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        record = dict(summary["provenance"])
        (data,) = record["scenarios"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ScenarioError(
            f"{summary_path}: not the summary.json of one twin run with provenance ({exc!r})"
        ) from None
    record["replication"] = summary.get("replication", 0)
    data = dict(data)
    name = data.pop("name", "replay")
    try:
        scenario = scenario_from_dict(data, name=name)
    except ScenarioError as exc:
        notes = "; ".join(version_differences(record)) or "same version"
        raise ScenarioError(
            f"{summary_path}: its scenario no longer loads ({exc}); {notes}"
        ) from None
    return record, scenario
