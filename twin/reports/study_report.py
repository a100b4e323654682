"""Figures of the studies: KPIs with confidence intervals, the comparison's forest plot, the
staffing curve, the minimum-staffing map, validation and sensitivity.

Axis names are in words with their units (`twin.reports.formatting`); the HTML around the
figures is made by `twin.reports.html`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.reports.formatting import label, number, show, unit_of
from twin.reports.run_plots import pyplot, save_figure

if TYPE_CHECKING:
    from pathlib import Path

    import geopandas as gpd

__all__ = [
    "number",
    "plot_forest",
    "plot_min_staffing_map",
    "plot_scenarios",
    "plot_sensitivity",
    "plot_staffing_curve",
    "plot_validation",
]

PANELS = (
    ("mean_coordination_h", "mean coordination time (h)", "coordination_mean_h"),
    ("mean_resolution_h", "mean resolution time (h)", "resolution_mean_h"),
    ("share_coordinated_within_6h", "coordinated within 6 hours (%)", None),
    ("share_resolved_within_7d", "resolved within 7 days (%)", None),
)
TARGET_WORDS = {
    "coordination_mean_h": "6-hour coordination target",
    "resolution_mean_h": "7-day resolution target",
    "benchmark_resolution_h": "9-hour benchmark (Dec 2016)",
}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def _scale(kpi: str) -> float:
    return 100.0 if kpi.startswith("share") else 1.0


def plot_scenarios(
    summaries: dict[str, pd.DataFrame], targets: dict[str, float], out: Path
) -> Path:
    """Side-by-side means with 95 % CIs of the four SLA KPIs, one bar per scenario."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(14, 4))
    names = list(summaries)
    colours = plt.cm.tab10(np.arange(len(names)))
    for ax, (kpi, title, target) in zip(axes, PANELS, strict=True):
        k = _scale(kpi)
        means = np.array([summaries[n].at[kpi, "mean"] for n in names]) * k
        lows = np.array([summaries[n].at[kpi, "ci_low"] for n in names]) * k
        highs = np.array([summaries[n].at[kpi, "ci_high"] for n in names]) * k
        err = np.nan_to_num(np.vstack([means - lows, highs - means]))
        ax.bar(range(len(names)), means, yerr=err, capsize=4, color=colours)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        ax.set_title(title, fontsize=10)
        if target is not None and target in targets:
            ax.axhline(targets[target], color="#b3261e", linestyle="--",
                       label=f"{TARGET_WORDS[target]}: {targets[target]:g} h")  # fmt: skip
            ax.legend(fontsize=8)
    fig.suptitle("means over replications with 95 % confidence intervals")
    return save_figure(fig, out)


VERDICT_COLOURS = {
    "better": "#1b7f3b",
    "worse": "#b3261e",
    "equivalent": "#2f5d8a",
    "inconclusive": "#8c8c8c",
    "higher": "#8c6d31",
    "lower": "#8c6d31",
}


def plot_forest(
    differences: dict[str, pd.DataFrame],
    kpis: list[str],
    baseline: str,
    out: Path,
    lower_is_better: dict[str, bool | None],
) -> Path:
    """Forest plot of paired differences: one row per scenario and KPI, the difference with its
    95 % CI in units of the KPI's practical threshold, turned so that right is better; the
    shaded band is "equivalent" (within the threshold). Labels give the difference in the
    KPI's own unit and the verdict."""
    plt = pyplot()
    rows = [(n, k) for n in differences for k in kpis]
    fig, ax = plt.subplots(figsize=(11, 0.42 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1]
    span = 1.5
    for yi, (name, kpi) in zip(y, rows, strict=True):
        d: dict[Any, Any] = differences[name].loc[kpi].to_dict()
        limit = float(d["threshold"]) or 1.0
        turn = -1.0 if lower_is_better.get(kpi) else 1.0  # right is better
        x, lo, hi = (turn * float(d[c]) / limit for c in ("difference", "ci_low", "ci_high"))
        lo, hi = min(lo, hi), max(lo, hi)
        colour = VERDICT_COLOURS.get(str(d["verdict"]), "#333")
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [yi, yi], color=colour, linewidth=2.2)
            span = max(span, abs(lo), abs(hi))
        ax.plot([x], [yi], "o", color=colour, markersize=7)
        span = max(span, abs(x) if np.isfinite(x) else 0)
        shown = show(kpi, d["difference"], sign=True, unit=True)
        interval = f"{show(kpi, d['ci_low'], sign=True)} to {show(kpi, d['ci_high'], sign=True)}"
        ax.annotate(f"{shown} ({interval}): {d['verdict']}", xy=(1.01, yi),
                    xycoords=("axes fraction", "data"), va="center", fontsize=8.5, color=colour)  # fmt: skip
    ax.axvspan(-1, 1, color="#2f5d8a", alpha=0.08, label="equivalent zone (within the threshold)")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlim(-span * 1.1, span * 1.1)
    ax.set_yticks(y, [f"{n}: {label(k)}" for n, k in rows], fontsize=9)
    ax.set_xlabel("difference in units of the practical threshold (left: worse, right: better)")
    ax.set_title(f"paired differences against {baseline}, 95 % confidence intervals", fontsize=11)
    ax.legend(loc="lower left", fontsize=8)
    fig.subplots_adjust(right=0.62)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def _series_label(name: object) -> str:
    if isinstance(name, tuple):
        return ", ".join(map(str, name))
    return str(name)


def plot_staffing_curve(
    table: pd.DataFrame, staffing: str, series: list[str], targets: dict[str, float], out: Path
) -> Path:
    """Mean coordination, mean resolution and the SLA shares against staffing, one line per
    combination of the other grid fields, each with its own marker and dash and a small
    sideways offset so no line hides another; every target drawn as a line."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    groups = list(table.groupby(series, sort=True)) if series else [("all", table)]
    xs = np.sort(table[staffing].unique().astype(float))
    step = float(np.min(np.diff(xs))) if len(xs) > 1 else 1.0
    colours = plt.cm.tab10(np.arange(len(groups)) % 10)
    panels = (
        ("mean_coordination_h", ("coordination_mean_h",)),
        ("mean_resolution_h", ("benchmark_resolution_h", "resolution_mean_h")),
    )
    for j, (name, group) in enumerate(groups):
        g = group.sort_values(staffing)
        offset = (j - (len(groups) - 1) / 2) * step * 0.04
        x = g[staffing].to_numpy(dtype=float) + offset
        style = {"marker": MARKERS[j % len(MARKERS)], "linestyle": LINESTYLES[j % len(LINESTYLES)],
                 "color": colours[j], "label": f"{', '.join(series)} = {_series_label(name)}" if series else "all"}  # fmt: skip
        for ax, (kpi, _) in zip(axes[:2], panels, strict=True):
            mean = g[kpi].to_numpy(dtype=float)
            err = np.nan_to_num(np.vstack([mean - g[f"{kpi}_ci_low"], g[f"{kpi}_ci_high"] - mean]))
            ax.errorbar(x, mean, yerr=np.abs(err), capsize=3, **style)
        c = axes[2]
        c.plot(x, g["share_coordinated_within_6h"] * 100, markersize=6, alpha=0.9, **style)
        style["label"] = None
        c.plot(x, g["share_resolved_within_7d"] * 100, markersize=6, alpha=0.9,
               **{**style, "linestyle": ":", "marker": style["marker"], "markerfacecolor": "white"})  # fmt: skip
    for ax, (kpi, lines) in zip(axes[:2], panels, strict=True):
        for t in lines:
            if t in targets:
                ax.axhline(targets[t], color="#b3261e" if t != "benchmark_resolution_h" else "#8172b3",
                           linestyle="--", linewidth=1.2, label=f"{TARGET_WORDS[t]}: {targets[t]:g} h")  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylabel(f"{label(kpi, unit=True)}, log scale, 95 % CI")
        ax.set_title(label(kpi), fontsize=10)
    axes[2].set_ylabel("share of reports (%)")
    axes[2].set_title(
        "filled: coordinated within 6 hours; open: resolved within 7 days", fontsize=9
    )
    for ax in axes:
        ax.set_xlabel(label(staffing))
        ax.legend(fontsize=7.5)
        ax.grid(alpha=0.3)
    fig.suptitle("staffing curve: means over replications")
    return save_figure(fig, out)


def plot_min_staffing_map(
    mainland: gpd.GeoDataFrame,
    minimum: pd.Series,
    staffing: str,
    out: Path,
    *,
    title: str = "",
    missing: str = "not met in the grid",
) -> Path:
    """Mainland kelurahan (`mainland`: the city's table without Kepulauan Seribu) coloured by
    the smallest staffing that meets the targets: a discrete legend, one colour per grid value,
    red where no value of the grid meets them."""
    from matplotlib.patches import Patch

    plt = pyplot()
    values = minimum.reindex(mainland["kode_kemendagri"].astype(str)).to_numpy(dtype=float)
    levels = sorted(set(values[np.isfinite(values)].tolist()))
    palette = plt.cm.viridis(np.linspace(0.15, 0.9, max(len(levels), 1)))
    fig, ax = plt.subplots(figsize=(8.5, 8))
    handles = []
    for colour, level in zip(palette, levels, strict=False):
        part = mainland[values == level]
        part.plot(ax=ax, color=colour, edgecolor="white", linewidth=0.2)
        handles.append(Patch(color=colour, label=f"{level:g} ({len(part)} kelurahan)"))
    gone = mainland[~np.isfinite(values)]
    if len(gone):
        gone.plot(ax=ax, color="#d62728", edgecolor="white", linewidth=0.2)
        handles.append(Patch(color="#d62728", label=f"{missing} ({len(gone)})"))
    ax.legend(handles=handles, title=label(staffing), loc="lower left", fontsize=9)
    ax.set_axis_off()
    ax.set_title(title or f"smallest {label(staffing)} meeting the targets")
    return save_figure(fig, out)


def plot_validation(table: pd.DataFrame, out: Path) -> Path:
    """Published (1) against simulated (dot with its 95 % predictive interval), relative to the
    published value, per check and KPI; green: fitted within tolerance or predicted interval
    holding the published value, red: a miss, grey: the volume (an input)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(table) + 1.5))
    y = list(range(len(table)))
    ratio = table["simulated"] / table["published"]
    err = [
        ((table["simulated"] - table["pi_low"]) / table["published"]).clip(lower=0),
        ((table["pi_high"] - table["simulated"]) / table["published"]).clip(lower=0),
    ]
    ok = [
        row["in_interval"] if row["role"] == "predicted" else row["pass"]
        for _, row in table.iterrows()
    ]
    colours = [
        "#999999" if role == "volume" else ("#1b7f3b" if good else "#b3261e")
        for role, good in zip(table["role"], ok, strict=True)
    ]
    ax.errorbar(ratio, y, xerr=[e.fillna(0) for e in err], fmt="none", ecolor="#555")
    ax.scatter(ratio, y, c=colours, zorder=3)
    ax.axvline(1.0, color="black", linewidth=1)
    labels = [
        f"{p} ({c}): {label(k)}"
        for p, c, k in zip(table["period"], table["check"], table["kpi"], strict=True)
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(
        "simulated / published (1 = exact), 95 % predictive interval; green: within, red: missed, grey: volume"
    )
    ax.invert_yaxis()
    ax.set_title("validation: fitted (in-sample) and predicted (out-of-sample)")
    fig.tight_layout()
    return save_figure(fig, out)


def _short(field: str) -> str:
    """A parameter's label: without its section, tied fields (comma-separated) as one."""
    fields = field.split(",")
    first = fields[0].replace("coordination.", "").replace("demand.", "").replace("agencies.", "")
    return f"{first} (x{len(fields)} tied)" if len(fields) > 1 else first


def plot_posterior(population: pd.DataFrame, fields: list[str], out: Path) -> Path:
    """The calibration region: every pair of fitted parameters among the accepted draws (colour:
    distance in units of the published tolerance), each parameter's histogram on the diagonal."""
    plt = pyplot()
    n = len(fields)
    fig, axes = plt.subplots(n, n, figsize=(2.6 * n + 1, 2.6 * n + 0.5), squeeze=False)
    for i, fy in enumerate(fields):
        for j, fx in enumerate(fields):
            ax = axes[i][j]
            if i == j:
                ax.hist(population[fx], weights=population["weight"], bins=12, color="#4c72b0")
            else:
                ax.scatter(population[fx], population[fy], c=population["distance"],
                           cmap="viridis_r", s=12)  # fmt: skip
            if i == n - 1:
                ax.set_xlabel(_short(fx), fontsize=8)
            if j == 0:
                ax.set_ylabel(_short(fy), fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle("accepted parameter draws (ABC-SMC): the calibration region")
    fig.tight_layout()
    return save_figure(fig, out)


def plot_sensitivity(indices: pd.DataFrame, order: list[str], out: Path) -> Path:
    """Morris mu* (mean absolute elementary effect, with its 95 % bootstrap interval) of every
    parameter on each SLA KPI; parameters in `order` (most influential overall on top)."""
    plt = pyplot()
    kpis = list(dict.fromkeys(indices["kpi"]))
    fig, axes = plt.subplots(
        1, len(kpis), figsize=(4.2 * len(kpis), 0.45 * len(order) + 1.6), sharey=True
    )
    y = np.arange(len(order))[::-1]  # the first of `order` on top
    for ax, kpi in zip(np.atleast_1d(axes), kpis, strict=True):
        part = indices[indices["kpi"] == kpi].set_index("parameter").reindex(order)
        ax.barh(y, part["mu_star"], xerr=part["mu_star_conf"], color="#4c72b0", ecolor="#333")
        ax.set_title(label(kpi), fontsize=10)
        ax.set_xlabel(f"mu*: change over the range ({unit_of(kpi) or 'KPI units'})")
    np.atleast_1d(axes)[0].set_yticks(y, order)
    fig.suptitle("Morris sensitivity: effect of each assumed parameter over its plausible range")
    fig.tight_layout()
    return save_figure(fig, out)
