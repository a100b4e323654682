"""Read vector files into GeoDataFrames, turning every read failure into one `DataError`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from twin.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import geopandas as gpd


def read_vector(
    path: Path, *, columns: Iterable[str], geom_types: Iterable[str]
) -> gpd.GeoDataFrame:
    """Read a vector file and check its columns, geometry types and CRS.

    Parameters
    ----------
    path
        A GeoJSON or shapefile.
    columns
        Attribute columns that must be present.
    geom_types
        Allowed geometry types, e.g. ``("Polygon", "MultiPolygon")``.

    Returns
    -------
    gdf
        The file's features in EPSG:4326 (lon/lat).
    """
    import geopandas as gpd

    if not path.is_file():
        msg = f"{path}: missing input file"
        raise DataError(msg)
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types; the user needs only the file and why
        msg = f"{path}: cannot be read as a vector file ({exc})"
        raise DataError(msg) from exc
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        msg = f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, gdf.columns))})"
        raise DataError(msg)
    if len(gdf) == 0:
        msg = f"{path}: contains no features"
        raise DataError(msg)
    if gdf.geometry.isna().any() or gdf.geometry.is_empty.any():
        msg = f"{path}: {int((gdf.geometry.isna() | gdf.geometry.is_empty).sum())} feature(s) have no geometry"
        raise DataError(msg)
    allowed = set(geom_types)
    bad = sorted(set(gdf.geom_type) - allowed)
    if bad:
        msg = (
            f"{path}: geometry type(s) {', '.join(bad)} where {', '.join(sorted(allowed))} expected"
        )
        raise DataError(msg)
    if gdf.crs is None:
        gdf = gdf.set_crs(4326)
    elif gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    minx, miny, maxx, maxy = gdf.total_bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        msg = f"{path}: coordinates outside lon/lat range (bounds {minx:.3f},{miny:.3f},{maxx:.3f},{maxy:.3f})"
        raise DataError(msg)
    return gdf
