"""Self-contained and reproducible: the shipped data, provenance in every output, replay, and
output folders that are never overwritten silently."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from twin.city.datadir import (
    DEFAULT_DATA_DIR,
    INSTALLED_ROOT,
    SOURCE_ROOT,
    file_digests,
    manifest_mismatches,
    resolve_data_dir,
)
from twin.reports.provenance import data_provenance
from twin_cli.main import main

SMALL = """
[run]
days = 2
seed = 5
[demand]
reports_per_day = 200.0
[crews]
per_kelurahan = 2
"""


def test_the_data_ships_with_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no TWIN_DATA_DIR and nothing beside the clone, the data is the project's own."""
    monkeypatch.delenv("TWIN_DATA_DIR", raising=False)
    paths = resolve_data_dir()
    assert paths.root == SOURCE_ROOT / "data" / "jakarta" == DEFAULT_DATA_DIR
    for required in (paths.kelurahan, paths.kecamatan, paths.rw, paths.roads, paths.offices,
                     paths.population):  # fmt: skip
        assert paths.require(required).is_file()
    assert manifest_mismatches(paths.root, file_digests(paths.root)) == []
    tracked = subprocess.run(
        ["git", "-C", str(SOURCE_ROOT), "ls-files", "data/jakarta"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    manifest = (paths.root / "SHA256SUMS").read_text().splitlines()
    for line in manifest:  # a clone gets every file the manifest names, and each licence
        assert f"data/jakarta/{line.split('  ')[1]}" in tracked
    for licence in ("boundaries/LICENSE-boundaries.txt", "boundaries/rw/LICENSE-ODbL.txt",
                    "roads/LICENSE-ODbL.txt", "population/LICENSE-population.txt", "README.md"):  # fmt: skip
        assert f"data/jakarta/{licence}" in tracked


def test_nothing_refers_outside_the_repository() -> None:
    outside = "../" + "shared"  # the development layout's sibling folder (spelled apart: not a use)
    found = subprocess.run(
        ["git", "-C", str(SOURCE_ROOT), "grep", "-n", "-F", "-e", outside],
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert found == ""


def test_the_city_builds_from_the_committed_data(real_city) -> None:  # type: ignore[no-untyped-def]
    assert real_city.paths.root == resolve_data_dir().root
    assert real_city.n_kelurahan == 267


def test_a_corrupted_data_file_is_reported(
    synthetic_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    digests = file_digests(synthetic_dir)
    (synthetic_dir / "SHA256SUMS").write_text(
        "".join(f"{digest}  {name}\n" for name, digest in digests.items())
    )
    assert data_provenance(synthetic_dir)["manifest_mismatches"] == []
    offices = synthetic_dir / "offices" / "kelurahan_offices.csv"
    offices.write_text(offices.read_text().replace("Satu", "Satoe"))
    record = data_provenance(synthetic_dir)
    assert record["manifest_mismatches"] == [
        "offices/kelurahan_offices.csv: content differs from SHA256SUMS"
    ]
    assert "kelurahan_offices.csv: content differs" in caplog.text


def test_installed_copy_is_found_outside_a_checkout(tmp_path: Path) -> None:
    """A wheel carries the data and scenarios; installed without -e, run from another folder,
    the twin finds them under <prefix>/share/jakarta-twin."""
    import shutil
    import sys
    import sysconfig

    wheel_dir, prefix, source = tmp_path / "wheel", tmp_path / "venv", tmp_path / "source"
    files = subprocess.run(  # the files a clone has (built in a copy: no build/ left behind)
        ["git", "-C", str(SOURCE_ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in files:
        if (SOURCE_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(SOURCE_ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
                    str(wheel_dir), str(source)], check=True, timeout=300)  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True, timeout=300)
    (wheel,) = wheel_dir.glob("*.whl")
    # the new environment's own pip: the project's own install must stay as it is
    subprocess.run([str(prefix / "bin" / "python"), "-m", "pip", "--disable-pip-version-check",
                    "-q", "install", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=300)  # fmt: skip
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix)}))
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")  # the dependencies
    code = (
        "import twin.city.datadir as d, twin_cli;"
        "print(d.DEFAULT_DATA_DIR); print(d.SCENARIO_DIR); print(twin_cli.__file__)"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    lines = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", code],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    share = (prefix / "share" / "jakarta-twin").resolve()
    assert Path(lines[0]).resolve() == share / "data" / "jakarta"
    assert (Path(lines[1]) / "jakarta-2016-calibrated.toml").is_file()
    assert str(prefix.resolve()) in str(Path(lines[2]).resolve())  # not the source tree
    assert (share / "data" / "jakarta" / "roads" / "LICENSE-ODbL.txt").is_file()
    assert INSTALLED_ROOT.name == "jakarta-twin"


def _run(tmp_path: Path, synthetic_dir: Path, *extra: str) -> int:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    return main(["run", str(scenario), "--data", str(synthetic_dir), "--quiet", *extra])


def test_provenance_and_replay_identity(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert _run(tmp_path, synthetic_dir, "--out", str(out)) == 0
    summary = json.loads((out / "summary.json").read_text())
    record = summary["provenance"]
    assert {"command", "started_at", "package", "git", "libraries", "data", "seeds", "scenarios",
            "outputs"} <= set(record)  # fmt: skip
    assert record["command"].startswith("twin run ")
    assert "--quiet" in record["command"]
    assert record["seeds"] == [5]
    (scenario,) = record["scenarios"]
    assert scenario["run"]["days"] == 2
    assert scenario["crews"]["per_kelurahan"] == 2
    assert scenario["demand"]["reports_per_day"] == 200.0
    assert "shifts" in scenario["crews"]
    assert "targets" in scenario
    assert {"numpy", "pandas", "simpy", "python"} <= set(record["libraries"])
    assert record["package"]["name"] == "jakarta-twin"
    assert record["git"] is None or set(record["git"]) == {"commit", "dirty"}
    assert "offices/kelurahan_offices.csv" in record["data"]["files"]
    capsys.readouterr()

    replay = tmp_path / "replay"
    code = main(["run", "--replay", str(out / "summary.json"), "--out", str(replay), "--quiet",
                 "--data", str(synthetic_dir)])  # fmt: skip
    assert code == 0
    assert (replay / "reports.parquet").read_bytes() == (out / "reports.parquet").read_bytes()
    assert "identical" in capsys.readouterr().out

    # a summary written by another version: the replay says which version differs
    record["package"]["version"] = "0.0.1"
    record["libraries"]["simpy"] = "3.0.0"
    (out / "summary.json").write_text(json.dumps(summary))
    code = main(["run", "--replay", str(out / "summary.json"), "--out", str(tmp_path / "r2"),
                 "--quiet", "--data", str(synthetic_dir)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    assert "jakarta-twin 0.0.1 wrote it" in err
    assert "simpy 3.0.0 wrote it" in err


def test_bad_replay_input_is_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["run", "--replay", str(tmp_path / "none.json")]) == 2
    assert "no such summary file" in capsys.readouterr().err
    bad = tmp_path / "summary.json"
    bad.write_text("{}")
    assert main(["run", "--replay", str(bad)]) == 2
    assert "not the summary.json of one twin run" in capsys.readouterr().err
    assert main(["run", "--replay", str(bad), "--seed", "3"]) == 2
    assert "drop them" in capsys.readouterr().err


def test_an_earlier_result_is_never_overwritten_silently(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("twin_cli.simulation.output_root", lambda: tmp_path / "reports_out")
    assert _run(tmp_path, synthetic_dir) == 0
    assert _run(tmp_path, synthetic_dir, "--days", "1") == 0  # another length: another folder
    folders = sorted(p.name for p in (tmp_path / "reports_out").iterdir())
    assert folders == ["small-seed5-1d", "small-seed5-2d"]
    capsys.readouterr()
    assert _run(tmp_path, synthetic_dir) == 2
    assert "folder exists and is not empty" in capsys.readouterr().err
    assert _run(tmp_path, synthetic_dir, "--overwrite") == 0
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "thesis.tex").write_text("keep me")
    assert _run(tmp_path, synthetic_dir, "--out", str(stranger), "--overwrite") == 2
    assert "not an output folder of twin" in capsys.readouterr().err
    assert (stranger / "thesis.tex").read_text() == "keep me"
