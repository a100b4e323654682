"""Interactive kelurahan maps for the HTML reports: hover a kelurahan for its name and KPIs.

Made with plotly (``Choroplethmap`` on a blank ``white-bg`` style: no map tiles, so nothing is
fetched) and written with plotly.js inlined, so the map works offline from the file alone.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.reports.formatting import label, show
from twin.reports.places import places_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    import geopandas as gpd

SIMPLIFY_DEG = 0.0002  # about 20 m: a kelurahan keeps its shape, the file stays small
MISSING_COLOUR = "#d0d0d0"


def _geojson(mainland: gpd.GeoDataFrame) -> dict[str, object]:
    import shapely

    shapes = mainland[["kode_kemendagri", "geometry"]].copy()
    simple = shapely.set_precision(shapes.geometry.simplify(SIMPLIFY_DEG).to_numpy(), 1e-5)
    shapes = shapes.set_geometry(list(simple), crs=mainland.crs)
    data: dict[str, object] = json.loads(shapes.to_json(drop_id=True))
    return data


def robust_range(values: np.ndarray) -> tuple[float, float]:
    """The 2nd and 98th percentiles: a few extreme kelurahan do not wash out the others."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(finite, [2, 98])
    return (float(lo), float(hi if hi > lo else lo + 1))


def kelurahan_map(
    mainland: gpd.GeoDataFrame,
    values: pd.DataFrame,
    colour: str,
    *,
    hover: Sequence[str] = (),
    discrete: bool = False,
    colourscale: str = "RdYlGn_r",
    centred: bool = False,
    include_plotlyjs: bool = True,
    height: int = 640,
) -> str:
    """An interactive map of the mainland kelurahan as an HTML fragment.

    Parameters
    ----------
    mainland
        The city's kelurahan table without Kepulauan Seribu (code, names, polygons).
    values
        Indexed by kelurahan code: the column `colour` and the `hover` columns.
    colour
        The column that colours the map: a continuous scale clipped to the 2-98 % range
        (extremes beyond it take the end colours), or one colour per value when `discrete`.
    hover
        Columns shown, formatted with their units, when hovering over a kelurahan.
    centred
        A diverging scale centred on zero (a change: both directions equally far).
    include_plotlyjs
        Inline plotly.js (once per page: False for a second map on the same page).
    """
    import plotly.graph_objects as go

    codes = mainland["kode_kemendagri"].astype(str)
    where = places_of(mainland)
    data = values.reindex(codes)
    lines = [
        f"<b>{row.kelurahan}</b><br>kecamatan {row.kecamatan}, {row.kota}<br>code {code}"
        for code, row in where.iterrows()
    ]
    for column in dict.fromkeys([colour, *hover]):
        shown = [show(column, v, unit=True) for v in data[column].to_numpy()]
        lines = [f"{a}<br>{label(column)}: {b}" for a, b in zip(lines, shown, strict=True)]
    text = np.array(lines, dtype=object)
    shapes = _geojson(mainland)
    common: dict[str, object] = {"geojson": shapes, "featureidkey": "properties.kode_kemendagri",
              "hovertemplate": "%{text}<extra></extra>", "marker": {"line": {"width": 0.4, "color": "white"}}}  # fmt: skip
    z = pd.to_numeric(data[colour], errors="coerce").to_numpy(dtype=float)
    traces = []
    if discrete:
        levels = sorted(set(z[np.isfinite(z)].tolist()))
        palette = _palette(len(levels))
        for level, hex_colour in zip(levels, palette, strict=True):
            keep = z == level
            traces.append(
                _trace(go, codes[keep], text[keep], hex_colour, show(colour, level), common)
            )
    else:
        lo, hi = robust_range(z)
        if centred:
            lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
        keep = np.isfinite(z)
        traces.append(
            go.Choroplethmap(
                locations=codes[keep], z=z[keep], text=text[keep], zmin=lo, zmax=hi,
                colorscale=colourscale, colorbar={"title": {"text": label(colour, unit=True)}, "len": 0.8},
                name=label(colour), **common,
            )
        )  # fmt: skip
    gone = ~np.isfinite(z)
    if gone.any():
        name = "not met in the grid" if discrete else "no data"
        traces.append(_trace(go, codes[gone], text[gone], MISSING_COLOUR, name, common))
    fig = go.Figure(traces)
    bounds = mainland.total_bounds
    fig.update_layout(
        map={"style": "white-bg", "zoom": fitting_zoom(bounds, height),
             "center": {"lon": (bounds[0] + bounds[2]) / 2, "lat": (bounds[1] + bounds[3]) / 2}},
        margin={"l": 0, "r": 0, "t": 10, "b": 0}, height=height,
        legend={"title": {"text": label(colour, unit=True)}, "x": 0.01, "y": 0.02, "bgcolor": "rgba(255,255,255,0.85)"},
    )  # fmt: skip
    html: str = fig.to_html(
        full_html=False,
        include_plotlyjs=include_plotlyjs,
        config={"displaylogo": False, "responsive": True, "scrollZoom": True},
    )
    return html


def fitting_zoom(bounds: np.ndarray, height: int, width: int = 1000) -> float:
    """The web-map zoom at which `bounds` (lon/lat) fill about 85 % of the map: a world of
    512 * 2**zoom pixels (MapLibre's tiles)."""
    lon_span = max(float(bounds[2] - bounds[0]), 1e-4)
    lat_span = max(float(bounds[3] - bounds[1]), 1e-4)
    fit = min(0.85 * height / lat_span, 0.85 * width / lon_span)
    return float(np.clip(np.log2(fit * 360 / 512), 1, 16))


def _palette(n: int) -> list[str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["viridis"]
    return [to_hex(cmap(x)) for x in np.linspace(0.15, 0.9, max(n, 1))][:n]


def _trace(
    go: object,
    codes: pd.Series,
    text: np.ndarray,
    colour: str,
    name: str,
    common: dict[str, object],
) -> object:
    """One single-colour layer with a legend entry (a discrete class, or the missing ones)."""
    return go.Choroplethmap(  # type: ignore[attr-defined]
        locations=codes, z=np.zeros(len(codes)), text=text, name=name, showlegend=True,
        showscale=False, colorscale=[[0, colour], [1, colour]], **common,
    )  # fmt: skip
