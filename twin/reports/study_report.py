"""Figures and a self-contained HTML report for replications, comparisons and sweeps.

The HTML file embeds its plots (PNG as base64) and tables, so a planner can open it from an
email or a shared drive, without Python and without the files beside it.
"""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.reports.run_plots import pyplot, save_figure

if TYPE_CHECKING:
    from pathlib import Path

    from twin.city.assembly import City

PANELS = (
    ("mean_coordination_h", "mean coordination (h)", "coordination_mean_h"),
    ("mean_resolution_h", "mean resolution (h)", "benchmark_resolution_h"),
    ("share_coordinated_within_6h", "share coordinated within 6 h", None),
    ("share_resolved_within_7d", "share resolved within 7 days", None),
)


def plot_scenarios(
    summaries: dict[str, pd.DataFrame], targets: dict[str, float], out: Path
) -> Path:
    """Side-by-side means with 95 % CIs of the four SLA KPIs, one bar per scenario."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(14, 4))
    names = list(summaries)
    colours = plt.cm.tab10(np.arange(len(names)))
    for ax, (kpi, label, target) in zip(axes, PANELS, strict=True):
        means = np.array([summaries[n].at[kpi, "mean"] for n in names])
        lows = np.array([summaries[n].at[kpi, "ci_low"] for n in names])
        highs = np.array([summaries[n].at[kpi, "ci_high"] for n in names])
        err = np.nan_to_num(np.vstack([means - lows, highs - means]))
        ax.bar(range(len(names)), means, yerr=err, capsize=4, color=colours)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        ax.set_title(label, fontsize=10)
        if target is not None and target in targets:
            ax.axhline(
                targets[target],
                color="#c44e52",
                linestyle="--",
                label=f"target {targets[target]:g} h",
            )
            ax.legend(fontsize=8)
    fig.suptitle("means over replications, 95 % confidence intervals")
    return save_figure(fig, out)


def plot_staffing_curve(table: pd.DataFrame, staffing: str, series: list[str], out: Path) -> Path:
    """Mean resolution and SLA shares against staffing, one line per other grid combination."""
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.5))
    groups = table.groupby(series, sort=True) if series else [("all", table)]
    for name, group in groups:
        g = group.sort_values(staffing)
        label = (
            name
            if isinstance(name, str)
            else ", ".join(map(str, name if isinstance(name, tuple) else [name]))
        )
        x = g[staffing].to_numpy(dtype=float)
        a.plot(x, g["mean_resolution_h"], marker="o", label=label)
        a.fill_between(x, g["mean_resolution_h_ci_low"], g["mean_resolution_h_ci_high"], alpha=0.2)
        b.plot(x, g["share_resolved_within_7d"] * 100, marker="o", label=f"{label}: within 7 days")
        b.plot(
            x,
            g["share_coordinated_within_6h"] * 100,
            marker="s",
            linestyle="--",
            label=f"{label}: coordinated 6 h",
        )
    a.set_xlabel(staffing)
    a.set_ylabel("mean resolution (h), 95 % CI band")
    a.legend(fontsize=8)
    b.set_xlabel(staffing)
    b.set_ylabel("share of reports (%)")
    b.legend(fontsize=7)
    fig.suptitle("staffing curve")
    return save_figure(fig, out)


def plot_min_staffing_map(city: City, minimum: pd.Series, staffing: str, out: Path) -> Path:
    """Mainland kelurahan coloured by the smallest staffing that meets the targets."""
    plt = pyplot()
    gdf = city.table.assign(minimum=minimum.reindex(city.kelurahan.codes).to_numpy())[
        ~city.is_seribu
    ]
    fig, ax = plt.subplots(figsize=(8, 8))
    gdf.plot(
        column="minimum", ax=ax, cmap="viridis", legend=True, edgecolor="white", linewidth=0.2,
        missing_kwds={"color": "#d62728", "label": "not met in the grid"},
        legend_kwds={"label": staffing, "shrink": 0.6},
    )  # fmt: skip
    ax.set_axis_off()
    ax.set_title(f"smallest {staffing} meeting the targets (red: none in the grid)")
    return save_figure(fig, out)


def number(value: float, digits: int = 3, *, sign: bool = False) -> str:
    """`value` with `digits` decimals, never a negative zero ("-0.000" reads as a loss)."""
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    if text.lstrip("+-").strip("0.") == "":
        text = text.lstrip("+-")
    return text


def _table(frame: pd.DataFrame, *, digits: int = 3) -> str:
    return frame.to_html(
        float_format=lambda v: number(v, digits), border=0, classes="t", na_rep="-"
    )


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_html(out: Path, title: str, sections: list[tuple[str, Any]], *, note: str = "") -> Path:
    """One self-contained HTML file: each section is a table (DataFrame), an image path or text."""
    from pathlib import Path as _Path

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}",
        "table.t{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}",
        "table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}",
        "img{max-width:100%} h2{margin-top:1.6em;border-bottom:2px solid #4c72b0}",
        ".note{color:#555}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>jakarta-twin, generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. {html.escape(note)}</p>",
    ]
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(content, pd.DataFrame):
            parts.append(_table(content))
        elif isinstance(content, _Path):
            parts.append(_image(content))
        else:
            parts.append(f"<p>{html.escape(str(content))}</p>")
    parts.append("</body></html>")
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


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
        "#999999" if role == "volume" else ("#55a868" if good else "#c44e52")
        for role, good in zip(table["role"], ok, strict=True)
    ]
    ax.errorbar(ratio, y, xerr=[e.fillna(0) for e in err], fmt="none", ecolor="#555")
    ax.scatter(ratio, y, c=colours, zorder=3)
    ax.axvline(1.0, color="black", linewidth=1)
    labels = [
        f"{p} {c} {k}"
        for p, c, k in zip(table["period"], table["check"], table["kpi"], strict=True)
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("simulated / published (1 = exact), 95 % predictive interval")
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


KPI_LABELS = {kpi: label for kpi, label, _ in PANELS}


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
        ax.set_title(KPI_LABELS.get(kpi, kpi), fontsize=10)
        ax.set_xlabel("mu* (KPI units over the range)")
    np.atleast_1d(axes)[0].set_yticks(y, order)
    fig.suptitle("Morris sensitivity: effect of each assumed parameter over its plausible range")
    fig.tight_layout()
    return save_figure(fig, out)
