"""Output folders: claimed, locked while written, and settled so that a failed or killed command
never loses an earlier result and never leaves a folder that looks finished."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twin.errors import TwinError
from twin.reports.folders import WRITING, claim_output_dir, settle_output_dirs


@pytest.fixture(autouse=True)
def _settled():  # type: ignore[no-untyped-def]
    yield
    settle_output_dirs(succeeded=False)  # a test that fails midway leaves no lock open


def earlier_result(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text("{}")
    (folder / "MARKER").write_text("the earlier result")
    return folder


def test_a_folder_is_locked_while_its_command_writes(tmp_path: Path) -> None:
    out = claim_output_dir(tmp_path / "X", overwrite=False)
    assert (out / WRITING).is_file()
    with pytest.raises(TwinError, match="another twin command is writing this folder"):
        claim_output_dir(tmp_path / "X", overwrite=True)
    settle_output_dirs(succeeded=True)
    assert not (out / WRITING).exists()  # a finished folder carries no lock


def test_success_drops_the_replaced_result_and_failure_puts_it_back(tmp_path: Path) -> None:
    earlier_result(tmp_path / "X")
    out = claim_output_dir(tmp_path / "X", overwrite=True)
    assert not (out / "MARKER").exists()
    (out / "half.parquet").write_text("partial")
    settle_output_dirs(succeeded=False)
    assert (tmp_path / "X" / "MARKER").read_text() == "the earlier result"
    assert not (tmp_path / "X" / "half.parquet").exists()
    claim_output_dir(tmp_path / "X", overwrite=True)
    settle_output_dirs(succeeded=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X"]  # no hidden copy left behind


def test_a_folder_holding_the_commands_input_is_not_replaced(tmp_path: Path) -> None:
    scenario = earlier_result(tmp_path / "Z") / "mine.toml"
    scenario.write_text("[run]\n")
    with pytest.raises(TwinError, match="holds this command's input"):
        claim_output_dir(tmp_path / "Z", overwrite=True, inputs=[scenario])
    assert scenario.is_file()


@pytest.mark.parametrize("where", [".", "/proc/no-such-process/X"])
def test_the_current_folder_or_an_unwritable_path_is_one_line(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(earlier_result(tmp_path / "here"))
    with pytest.raises(TwinError, match=r"current or root folder|cannot write there"):
        claim_output_dir(Path(where), overwrite=True)
    assert (tmp_path / "here" / "MARKER").is_file()


def test_a_result_set_aside_by_a_killed_command_is_pointed_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".X.replaced-4242-abcdef").mkdir()
    with caplog.at_level(logging.WARNING):
        claim_output_dir(tmp_path / "X", overwrite=False)
    assert ".X.replaced-4242-abcdef holds a result of X" in caplog.text


def test_sigterm_puts_the_earlier_result_back(real_city, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A real `twin run` terminated during its simulation: exit 143, the earlier result back in
    place, no partial folder, no hidden copy, and no figure worker left running."""
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "jakarta-2016-calibrated.toml"
    out = earlier_result(tmp_path / "X")
    command = [sys.executable, "-m", "twin_cli", "run", str(scenario), "--days", "60",
               "--out", str(out), "--overwrite", "--quiet"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / WRITING).exists() and time.monotonic() < deadline:  # claimed: now running
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert (out / "MARKER").read_text() == "the earlier result"
    assert json.loads((out / "summary.json").read_text()) == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X"]
    time.sleep(0.5)  # the figure worker (forked, same command line) reads end-of-file and ends
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(out).encode() in cmdline.read_bytes():
                left.append(cmdline.parent.name)
        except OSError:  # the process ended meanwhile
            continue
    assert left == []
