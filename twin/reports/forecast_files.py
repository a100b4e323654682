"""A forecast's files: ``forecast.json`` (everything), CSV tables, and the breach map.

``forecast.json`` is what intake serves at ``/api/v1/forecast``: the as-of moment, the horizon,
the KPIs so far and at the horizon (mean and 2.5-97.5 % across replications), the backlog by
hour, the kelurahan most likely to breach, and the comparison when one was asked for.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from twin.reports.run_plots import pyplot, save_figure

if TYPE_CHECKING:
    from pathlib import Path

    import geopandas as gpd
    import pandas as pd

TOP_KELURAHAN = 20


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def forecast_document(
    forecast: dict[str, Any], meta: dict[str, Any], comparison: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON document of a forecast (what the API serves)."""
    kel: pd.DataFrame = forecast["kelurahan"]
    worst = kel.sort_values(["p_any_breach_7d", "expected_breaches_6h"], ascending=False)
    back: pd.DataFrame = forecast["backlog"]
    doc = {
        **meta,
        "kpis_so_far": forecast["kpis_so_far"],
        "kpis_forecast": forecast["kpis_forecast"],
        "breaches_expected": {
            "coordination_6h": float(kel["expected_breaches_6h"].sum()),
            "resolution_7d": float(kel["expected_breaches_7d"].sum()),
        },
        "open_reports_breached_already": {
            "coordination_6h": int(forecast["reports"]["breached_6h_already"].sum()),
            "resolution_7d": int(forecast["reports"]["breached_7d_already"].sum()),
        },
        "backlog_by_hour": back.assign(at=back["at"].astype(str)).to_dict(orient="records"),
        "kelurahan_at_risk": worst.head(TOP_KELURAHAN).reset_index().to_dict(orient="records"),
    }
    if comparison is not None:
        doc["comparison"] = comparison
    return _clean(doc)  # type: ignore[no-any-return]


def write_forecast(
    forecast: dict[str, Any],
    document: dict[str, Any],
    mainland: gpd.GeoDataFrame,
    out: Path,
) -> list[Path]:
    """Write ``forecast.json``, ``kelurahan.csv``, ``open_reports.csv``, ``backlog.csv`` and
    ``breach_map.png`` into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    path = out / "forecast.json"
    tmp = path.with_suffix(".json.tmp")  # whole or not at all: the API may read it any moment
    tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    tmp.replace(path)
    written.append(path)
    for name, frame, index in (
        ("kelurahan.csv", forecast["kelurahan"], True),
        ("open_reports.csv", forecast["reports"], False),
        ("backlog.csv", forecast["backlog"], False),
    ):
        frame.to_csv(out / name, index=index)
        written.append(out / name)
    written.append(
        plot_breach_map(forecast["kelurahan"], mainland, document, out / "breach_map.png")
    )
    return written


def plot_breach_map(
    kelurahan: pd.DataFrame, mainland: gpd.GeoDataFrame, meta: dict[str, Any], out: Path
) -> Path:
    """Mainland kelurahan coloured by the probability of a 7-day breach within the horizon."""
    plt = pyplot()
    codes = mainland["kode_kemendagri"].astype(str)
    gdf = mainland.assign(p=kelurahan.reindex(codes)["p_any_breach_7d"].to_numpy())
    fig, ax = plt.subplots(figsize=(9, 9))
    gdf.plot(
        column="p", ax=ax, cmap="Reds", vmin=0, vmax=1, legend=True, edgecolor="grey",
        linewidth=0.2, legend_kwds={"label": "P(a 7-day breach within the horizon)", "shrink": 0.6},
    )  # fmt: skip
    ax.set_axis_off()
    ax.set_title(
        f"{meta.get('scenario', '')}: {meta.get('hours', '')} h from {meta.get('as_of', '')}"
    )
    return save_figure(fig, out)
