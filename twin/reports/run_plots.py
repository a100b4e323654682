"""Figures of a run, written as PNGs next to its records."""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import signal
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.kpis import backlog_series
from twin.model.runner import busy_per_minute

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.connection import Connection
    from pathlib import Path

    import geopandas as gpd

    from twin.model.runner import RunResult


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out: Path) -> Path:
    """Write a figure as PNG and free it (pyplot keeps every open figure alive)."""
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    pyplot().close(fig)
    return out


def plot_arrivals_backlog(result: RunResult, out: Path) -> Path:
    """Reports received per day, and the open backlog hour by hour."""
    plt = pyplot()
    r = result.reports
    days = result.scenario.run.days
    per_day = np.bincount((r["received_h"] // 24).astype(int).clip(0, days - 1), minlength=days)
    # reports never picked up only pile up: shown apart, so the backlog in handling stays readable
    unanswered = (r["outcome"] == "unanswered").to_numpy()
    handling = backlog_series(r[~unanswered], end_h=days * 24.0)
    fig, (a, b) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    a.stairs(per_day, np.arange(days + 1), fill=True, color="#4c72b0")  # one artist, not 365 bars
    a.set_ylabel("reports received per day")
    a.set_title(f"{result.scenario.name}: daily arrivals and backlog")
    b.plot(handling.index / 24.0, handling.to_numpy(), color="#c44e52", linewidth=0.8,
           label="open, in handling")  # fmt: skip
    if unanswered.any():
        never = backlog_series(r[unanswered], end_h=days * 24.0)
        b.plot(never.index / 24.0, never.to_numpy(), color="#8c8c8c", linewidth=0.8,
               linestyle="--", label="never picked up (abandoned at the desk, or the residual share)")  # fmt: skip
        b.legend(loc="upper left", frameon=False)
    b.set_ylabel("open reports")
    b.set_xlabel("day of run")
    return save_figure(fig, out)


def plot_resolution(result: RunResult, out: Path) -> Path:
    """Distribution of resolution times with the 6 h, 9 h and 7-day lines."""
    plt = pyplot()
    hours = (result.reports["closed_h"] - result.reports["received_h"]).dropna().to_numpy()
    t = result.scenario.targets
    fig, ax = plt.subplots(figsize=(10, 5))
    bins = (
        np.logspace(np.log10(max(hours.min(), 0.05)), np.log10(max(hours.max(), 1.0)), 60)
        if len(hours)
        else 10
    )
    counts, edges = np.histogram(hours, bins=bins)
    ax.stairs(counts, edges, fill=True, color="#55a868")  # one artist, not 60 bars
    ax.set_xscale("log")
    for x, label, colour in (
        (t.coordination_mean_h, "6 h coordination target", "#dd8452"),
        (t.benchmark_resolution_h, "9 h Dec-2016 benchmark", "#8172b3"),
        (t.resolution_mean_h, "7-day resolution target", "#c44e52"),
    ):
        ax.axvline(x, color=colour, linestyle="--", label=label)
    if len(hours):
        ax.axvline(hours.mean(), color="black", label=f"mean of the resolved {hours.mean():.1f} h")
    ax.set_xlabel("hours from report to closure (log scale)")
    ax.set_ylabel("reports")
    ax.set_title(f"{result.scenario.name}: resolution time")
    ax.legend()
    return save_figure(fig, out)


def plot_kelurahan_map(result: RunResult, mainland: gpd.GeoDataFrame, out: Path) -> Path:
    """Mainland kelurahan (`mainland`: the city's table without Kepulauan Seribu) coloured by
    mean resolution time, the scale clipped to the 2-98 % range (a few extremes take the end
    colours instead of washing out the rest)."""
    plt = pyplot()
    values = result.kelurahan.reindex(mainland["kode_kemendagri"])["mean_resolution_h"].to_numpy()
    gdf = mainland.assign(mean_resolution_h=values)
    finite = values[np.isfinite(values)]
    lo, hi = np.percentile(finite, [2, 98]) if len(finite) else (0.0, 1.0)
    fig, ax = plt.subplots(figsize=(9, 9))
    gdf.plot(
        column="mean_resolution_h", ax=ax, cmap="RdYlGn_r", legend=True, edgecolor="white", linewidth=0.2,
        vmin=lo, vmax=max(hi, lo + 1e-9), missing_kwds={"color": "lightgrey", "label": "no report"},
        legend_kwds={"label": "mean resolution time (h), 2-98 % range", "shrink": 0.6, "extend": "both"},
    )  # fmt: skip
    ax.set_axis_off()
    ax.set_title(f"{result.scenario.name}: mean resolution time by kelurahan")
    return save_figure(fig, out)


def plot_utilisation(result: RunResult, out: Path) -> Path:
    """Crew utilisation (busy / on shift) by hour of day, with crews on shift."""
    plt = pyplot()
    minutes = len(result.on_duty)
    busy = busy_per_minute(result.busy, minutes)
    hour = (np.arange(minutes) // 60) % 24
    busy_h = np.bincount(hour, weights=np.minimum(busy, result.on_duty), minlength=24)
    duty_h = np.bincount(hour, weights=result.on_duty, minlength=24)
    util = np.divide(busy_h, duty_h, out=np.zeros(24), where=duty_h > 0)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.bar(np.arange(24), util * 100, color="#4c72b0")
    ax.set_xlabel("hour of day")
    ax.set_ylabel("crew utilisation (%)")
    ax.set_xticks(range(24))
    ax2 = ax.twinx()
    ax2.plot(
        np.arange(24),
        duty_h / max(1, minutes // 1440) / 60,
        color="#dd8452",
        marker="o",
        label="crews on shift",
    )
    ax2.set_ylabel("crews on shift")
    ax2.legend(loc="upper right")
    ax.set_title(f"{result.scenario.name}: crew utilisation by hour")
    return save_figure(fig, out)


def plot_decomposition(result: RunResult, out: Path) -> Path:
    """Mean resolution split into its parts, for all resolved reports, PPSU and agency jobs."""
    from twin.model.decomposition import GROUPS, PARTS

    plt = pyplot()
    parts = result.summary["decomposition"]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    left = np.zeros(len(GROUPS))
    for part in PARTS:
        values = np.nan_to_num([parts[g][f"{part}_h"] for g in GROUPS])
        ax.barh(list(GROUPS), values, left=left, label=part.replace("_", " "))
        left += values
    ax.set_xlabel("mean hours from receipt to closure (resolved reports)")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{result.scenario.name}: where the time goes")
    return save_figure(fig, out)


def write_plots(result: RunResult, mainland: gpd.GeoDataFrame, out: Path) -> list[Path]:
    """Every figure of a run (see `twin.reports.run_files.write_run`)."""
    return [
        plot_arrivals_backlog(result, out / "arrivals_backlog.png"),
        plot_resolution(result, out / "resolution_time.png"),
        plot_kelurahan_map(result, mainland, out / "kelurahan_resolution_map.png"),
        plot_utilisation(result, out / "crew_utilisation_by_hour.png"),
        plot_decomposition(result, out / "resolution_decomposition.png"),
    ]


WORKER_TIMEOUT_S = 300.0  # five figures take seconds; a worker silent this long is stuck
FIGURE_COLUMNS = ["received_h", "closed_h", "outcome"]  # all the figures read of the records


class FigureWorker:
    """A forked process that draws a run's figures while the caller goes on.

    Drawing the five figures takes matplotlib a second or two, plus half a second to import and
    warm up. Started before the simulation, the worker warms up on the other core; `draw` sends it
    the few columns the figures read and returns at once, so the records, the summary and the
    report's map are written meanwhile; `wait` returns the PNG paths (`twin bench run` measures
    the whole run). Where processes cannot fork, or the worker fails, `wait` draws the figures
    here instead, so a figure is never missing or half-written. Iterating waits, then yields the
    paths in the order of `write_plots`. Use it as a context manager: leaving stops the worker.
    """

    def __init__(self, mainland: gpd.GeoDataFrame) -> None:
        self._mainland = mainland
        self._job: tuple[RunResult, Path] | None = None
        self._paths: list[Path] | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        if "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")  # the child shares the city's polygons
            self._conn, child = context.Pipe()
            self._process = context.Process(
                target=_serve, args=(child, self._conn, mainland), daemon=True
            )
            self._process.start()
            child.close()

    def draw(self, result: RunResult, out: Path) -> None:
        """Draw `result`'s figures into `out` (returns at once when the worker runs)."""
        if self._job is not None:
            raise RuntimeError("a FigureWorker draws one run's figures")
        slim = dataclasses.replace(result, reports=result.reports[FIGURE_COLUMNS])
        self._job = (slim, out)
        if self._process is not None:
            try:
                self._conn.send(self._job)
            except OSError:  # the worker is gone: `wait` draws here
                self._stop()

    def wait(self) -> list[Path]:
        """The figures' paths, once drawn."""
        if self._job is None:
            raise RuntimeError("FigureWorker.wait before draw")
        if self._paths is None:
            drawn = None
            if self._process is not None:
                try:  # a worker that has not answered in this time is stuck: draw here
                    drawn = self._conn.recv() if self._conn.poll(WORKER_TIMEOUT_S) else None
                except (EOFError, OSError):  # the worker died
                    drawn = None
                self._stop()
            if not isinstance(drawn, list):
                drawn = write_plots(self._job[0], self._mainland, self._job[1])
            self._paths = drawn
        return self._paths

    def __iter__(self) -> Iterator[Path]:
        return iter(self.wait())

    def __enter__(self) -> FigureWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._process is None:
            return
        self._conn.close()  # the worker reads end-of-file and exits
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._process = None


def _serve(conn: Connection, parents_end: Connection, mainland: gpd.GeoDataFrame) -> None:
    """The worker: warm matplotlib up, then draw the one run it is sent and send the paths back
    (None if drawing failed: the parent then draws them itself, and any error shows there)."""
    parents_end.close()  # so that the parent's exit, however it ends, reaches us as end-of-file
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.set_title("warm-up")
    fig.savefig(io.BytesIO(), format="png")  # loads the fonts and the PNG writer
    plt.close(fig)
    try:
        result, out = conn.recv()
    except EOFError:  # the run stopped before its figures
        return
    try:
        drawn: list[Path] | None = write_plots(result, mainland, out)
    except Exception:
        drawn = None
    conn.send(drawn)
    conn.close()
