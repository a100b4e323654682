"""The figure worker: a run's PNGs drawn by a forked process are the ones drawn in-process, and a
worker that cannot fork or fails leaves no figure missing."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from tests.twin.test_model import full_scenario
from twin.model.runner import run_scenario
from twin.reports import run_plots
from twin.reports.run_plots import FigureWorker, write_plots

NAMES = [
    "arrivals_backlog.png",
    "resolution_time.png",
    "kelurahan_resolution_map.png",
    "crew_utilisation_by_hour.png",
    "resolution_decomposition.png",
]


@pytest.fixture
def run(synthetic_city):  # type: ignore[no-untyped-def]
    return run_scenario(synthetic_city, full_scenario()), synthetic_city.table


def test_worker_draws_the_figures_drawn_in_process_byte_for_byte(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, mainland = run
    (tmp_path / "worker").mkdir()
    (tmp_path / "here").mkdir()
    with FigureWorker(mainland) as worker:
        assert worker._process is not None  # this machine forks: the worker is a process
        worker.draw(result, tmp_path / "worker")
        drawn = worker.wait()
    assert [p.name for p in drawn] == NAMES
    here = write_plots(result, mainland, tmp_path / "here")
    for a, b in zip(drawn, here, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert not multiprocessing.active_children()  # leaving the block stopped the worker


def test_without_fork_the_figures_are_drawn_here(run, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    result, mainland = run
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    with FigureWorker(mainland) as worker:
        assert worker._process is None
        worker.draw(result, tmp_path)
        assert [p.name for p in worker] == NAMES
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in NAMES)


def test_a_failing_worker_leaves_no_figure_missing(run, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    result, mainland = run

    def broken(*_: object) -> list[Path]:
        raise RuntimeError("drawing failed in the worker")

    monkeypatch.setattr(run_plots, "write_plots", broken)
    worker = FigureWorker(mainland)  # forked with the broken drawing
    monkeypatch.undo()  # this process draws normally
    with worker:
        worker.draw(result, tmp_path)
        assert [p.name for p in worker.wait()] == NAMES
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in NAMES)


def test_a_worker_that_dies_leaves_no_figure_missing(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, mainland = run
    with FigureWorker(mainland) as worker:
        assert worker._process is not None
        worker._process.kill()
        worker._process.join()
        worker.draw(result, tmp_path)
        assert [p.name for p in worker.wait()] == NAMES
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in NAMES)


def test_a_worker_left_unused_stops(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    with FigureWorker(synthetic_city.table):
        assert len(multiprocessing.active_children()) == 1
    assert not multiprocessing.active_children()
