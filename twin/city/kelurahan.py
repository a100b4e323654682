"""The 267 kelurahan of DKI Jakarta, and which one a point falls in.

A kelurahan is the smallest administrative unit that handles a report: the lurah's office
coordinates it and the kelurahan's PPSU crew fixes it. `KelurahanIndex.locate` answers the
question the CRM asks of every report: whose is this?

Rule on borders (the polygons are simplified: neighbours overlap by slivers and leave gaps):

1. a point inside one or more polygons goes to the one with the lowest Kemendagri code;
2. a point inside none goes to the nearest polygon within `gap_tolerance_m` (default 200 m;
   ties again by lowest code), which closes the gaps between neighbours and admits a report
   from a pier or a riverbank just outside the mapped edge;
3. anything farther is outside Jakarta: ``None`` (or -1 in the vectorised form).

Distances use the local scale 1 degree = 111.32 km, which is exact to 0.6 % at Jakarta's latitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely

from twin.city.geoio import read_vector
from twin.errors import CoordinateError, DataError

if TYPE_CHECKING:
    from pathlib import Path

    import geopandas as gpd
    from numpy.typing import ArrayLike, NDArray

M_PER_DEGREE = 111_320.0
GRID_CELL_DEG = 0.002  # about 220 m: the scalar locate's lookup grid
# (minx, miny, nx, ny, owner row per cell, candidate rows of border cells, codes)
_Grid = tuple[float, float, int, int, list[int], dict[int, list[int]], list[str]]
KELURAHAN_COLUMNS = (
    "kode_kemendagri",
    "kelurahan",
    "kode_kecamatan",
    "kecamatan",
    "kode_kota",
    "kota",
)


def load_kelurahan(path: Path) -> gpd.GeoDataFrame:
    """Read the kelurahan polygons, sorted by code, with checked columns and unique codes.

    Parameters
    ----------
    path
        ``boundaries/kelurahan.geojson`` in the data directory.

    Returns
    -------
    gdf
        One row per kelurahan, index 0..n-1 in code order.
    """
    gdf = read_vector(path, columns=KELURAHAN_COLUMNS, geom_types=("Polygon", "MultiPolygon"))
    codes = gdf["kode_kemendagri"].astype(str)
    dupes = sorted(codes[codes.duplicated()].unique())
    if dupes:
        msg = f"{path}: duplicate kode_kemendagri {', '.join(dupes[:5])}"
        raise DataError(msg)
    gdf = gdf.assign(kode_kemendagri=codes).sort_values("kode_kemendagri").reset_index(drop=True)
    return gdf


def check_coordinates(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> None:
    """Raise `CoordinateError` for NaN or out-of-range lon/lat, hinting at swapped axes."""
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = f"coordinate {i} is not a number (lon={lon[i]}, lat={lat[i]}); {int(bad.sum())} such point(s)"
        raise CoordinateError(msg)
    bad = (np.abs(lat) > 90) | (np.abs(lon) > 180)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        hint = " (lon and lat look swapped)" if abs(lon[i]) <= 90 and abs(lat[i]) <= 180 else ""
        msg = (
            f"coordinate {i} out of range: lon={lon[i]} must be in [-180, 180] and lat={lat[i]} "
            f"in [-90, 90]{hint}"
        )
        raise CoordinateError(msg)


@dataclass(slots=True)
class KelurahanIndex:
    """Point-in-kelurahan lookups over the polygons, vectorised with a shapely STRtree.

    Attributes
    ----------
    table
        The kelurahan rows (code, names, kecamatan, kota, geometry) in code order.
    gap_tolerance_m
        How far outside every polygon a point may lie and still be assigned, in metres.
    """

    table: gpd.GeoDataFrame
    gap_tolerance_m: float = 200.0
    _tree: shapely.STRtree | None = None
    _codes: NDArray[np.str_] | None = None
    _grid: _Grid | None = None
    _polygons: NDArray[np.object_] | None = None

    def __post_init__(self) -> None:
        self._tree = shapely.STRtree(self.table.geometry.values)
        self._codes = self.table["kode_kemendagri"].to_numpy(dtype=str)

    @property
    def codes(self) -> NDArray[np.str_]:
        """Kemendagri codes in index order."""
        assert self._codes is not None
        return self._codes

    def locate_many(self, lon: ArrayLike, lat: ArrayLike) -> NDArray[np.int64]:
        """Kelurahan index of each point, or -1 outside Jakarta (see the module's border rule).

        Parameters
        ----------
        lon, lat
            Longitudes and latitudes in degrees (WGS84).

        Returns
        -------
        index
            Row numbers into `table`, -1 where the point is outside Jakarta.
        """
        lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        lat_a = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        if lon_a.shape != lat_a.shape:
            msg = f"lon and lat differ in shape: {lon_a.shape} against {lat_a.shape}"
            raise CoordinateError(msg)
        check_coordinates(lon_a, lat_a)
        assert self._tree is not None
        points = shapely.points(lon_a, lat_a)
        # Rows are in code order, so "lowest code" is "lowest row": a minimum per point.
        out = np.full(len(points), np.iinfo(np.int64).max, dtype=np.int64)
        hit_point, hit_poly = self._tree.query(points, predicate="intersects")
        np.minimum.at(out, hit_point, hit_poly)
        missing = np.flatnonzero(out == np.iinfo(np.int64).max)
        if len(missing):
            near_point, near_poly = self._tree.query_nearest(
                points[missing], max_distance=self.gap_tolerance_m / M_PER_DEGREE, all_matches=True
            )
            np.minimum.at(out, missing[near_point], near_poly)
        out[out == np.iinfo(np.int64).max] = -1
        return out

    def locate(self, lon: float, lat: float) -> str | None:
        """Kemendagri code of the kelurahan containing (lon, lat), or None outside Jakarta."""
        # scalar fast path (the intake API calls this once per report): no array round trips
        if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
            self.locate_many([lon], [lat])  # raises the descriptive CoordinateError
        minx, miny, nx, ny, owner, candidates, codes = self._grid or self._build_grid()
        i, j = int((lon - minx) / GRID_CELL_DEG), int((lat - miny) / GRID_CELL_DEG)
        if 0 <= i < nx and 0 <= j < ny:
            cell = j * nx + i
            if owner[cell] >= 0:
                return codes[owner[cell]]  # a cell wholly inside one kelurahan: no geometry
            polygons = self._polygons
            assert polygons is not None
            for row in candidates.get(cell, ()):  # rows ascend, so the first hit is the lowest code
                if shapely.intersects_xy(polygons[row], lon, lat):  # borders count as in
                    return codes[row]
        # outside every polygon: the gap rule (nearest polygon within the tolerance)
        assert self._tree is not None
        point = shapely.Point(lon, lat)
        hits = self._tree.query_nearest(
            point, max_distance=self.gap_tolerance_m / M_PER_DEGREE, all_matches=True
        )
        return codes[int(hits.min())] if len(hits) else None

    def prepare(self) -> None:
        """Build the scalar lookup grid now (about 1 s for Jakarta) rather than on first use."""
        if self._grid is None:
            self._build_grid()

    def _build_grid(self) -> _Grid:
        """A lookup grid of `GRID_CELL_DEG` cells for the scalar `locate`.

        A cell wholly inside polygons gets its kelurahan row (the lower code where two overlap,
        as the border rule says), so most points need no geometry at all; a border cell keeps the
        rows of the polygons it touches, tested exactly with prepared geometries.
        """
        assert self._tree is not None
        polygons = self.table.geometry.to_numpy().copy()
        shapely.prepare(polygons)
        minx, miny, maxx, maxy = shapely.total_bounds(polygons)
        nx = int(np.ceil((maxx - minx) / GRID_CELL_DEG)) + 1
        ny = int(np.ceil((maxy - miny) / GRID_CELL_DEG)) + 1
        jj, ii = np.divmod(np.arange(nx * ny), nx)
        x0, y0 = minx + ii * GRID_CELL_DEG, miny + jj * GRID_CELL_DEG
        pad = 1e-9  # a cell owns its kelurahan only with a margin: its edges are then interior
        cells = shapely.box(x0 - pad, y0 - pad, x0 + GRID_CELL_DEG + pad, y0 + GRID_CELL_DEG + pad)
        cell, poly = self._tree.query(cells, predicate="within")
        owner = np.full(nx * ny, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(owner, cell, poly)
        touch_cell, touch_poly = self._tree.query(cells, predicate="intersects")
        lowest_touching = np.full(nx * ny, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(lowest_touching, touch_cell, touch_poly)
        # an overlapping neighbour with a lower code owns part of the cell: test exactly there
        owner[(owner == np.iinfo(np.int64).max) | (owner != lowest_touching)] = -1
        candidates: dict[int, list[int]] = {}
        for c, p in sorted(zip(touch_cell.tolist(), touch_poly.tolist(), strict=True)):
            if owner[c] < 0:
                candidates.setdefault(c, []).append(p)
        self._polygons = polygons
        self._grid = (
            float(minx),
            float(miny),
            nx,
            ny,
            owner.tolist(),
            candidates,
            [str(c) for c in self.codes],
        )
        return self._grid
