"""The city the twin runs on: kelurahan, road network, depots and travel times, cached.

`load_city` reads the data directory, builds (or loads from cache) the road network and the
per-kecamatan travel tables, locates every road node in its kelurahan, and snaps each kelurahan
office to the network. The cache key is a hash of the input files' bytes and of the speed
settings, the content-hash idea of OSMnx's own cache: change either and the city is rebuilt.

Travel between two points (`City.travel_time_s`) is the off-network access leg at each end plus
the network time between their nodes, stretched by the hour's congestion factor. Where a
kelurahan has no road node (14 in under-mapped south-east Jakarta, and the Kepulauan Seribu
islands) the straight-line distance times a detour factor is ridden at a set speed, or sailed by
boat for the islands; those kelurahan are listed in `City.warnings`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial import cKDTree

from twin.city.datadir import DataPaths, resolve_data_dir, work_root
from twin.city.depots import read_offices
from twin.city.kelurahan import M_PER_DEGREE, KelurahanIndex, load_kelurahan
from twin.city.roads import RoadNetwork, haversine_m, load_network_file
from twin.city.speeds import SpeedSettings
from twin.city.travel import TravelTables, build_travel_tables
from twin.errors import CoordinateError

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    from numpy.typing import ArrayLike, NDArray

log = logging.getLogger(__name__)

CACHE_VERSION = "city-v1"  # bump when the build logic changes what it produces
SERIBU_KOTA_CODE = "31.01"
FAR_SNAP_M = 500.0  # a depot farther than this from any road node is reported


def default_cache_dir() -> Path:
    """``TWIN_CACHE_DIR``, else ``.cache/`` in the project root (git-ignored) or current folder."""
    import os

    env = os.environ.get("TWIN_CACHE_DIR")
    return Path(env).expanduser() if env else work_root() / ".cache"


@dataclass(slots=True)
class City:
    """Everything spatial the twin and the intake API need.

    Attributes
    ----------
    paths
        The data directory's files.
    speeds
        Speed and detour assumptions.
    kelurahan
        Point-in-kelurahan index over the 267 polygons (rows in code order).
    network
        The road network (largest strongly connected component).
    tables
        Per-kecamatan all-pairs node travel times.
    node_kelurahan
        Kelurahan row of every node.
    depots
        One row per kelurahan: ``kode_kemendagri, lon, lat, source, node, snap_m``.
    kecamatan_codes
        Kecamatan code of each region (table) index.
    kelurahan_region
        Region (kecamatan) index of each kelurahan row.
    cache
        How the network was obtained: ``{"status": "hit"|"built", "path": ..., "seconds": ...}``.
    warnings
        Data-quality warnings (kelurahan without roads, far depots), one line each.
    """

    paths: DataPaths
    speeds: SpeedSettings
    kelurahan: KelurahanIndex
    network: RoadNetwork
    tables: TravelTables
    node_kelurahan: NDArray[np.int64]
    depots: pd.DataFrame
    kecamatan_codes: NDArray[np.str_]
    kelurahan_region: NDArray[np.int64]
    cache: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    _trees: dict[int, tuple[cKDTree, NDArray[np.int64]]] = field(default_factory=dict)

    @property
    def n_kelurahan(self) -> int:
        """Number of kelurahan (267 for Jakarta)."""
        return len(self.kelurahan.table)

    @property
    def table(self) -> gpd.GeoDataFrame:
        """The kelurahan rows (code, names, kecamatan, kota, geometry)."""
        return self.kelurahan.table

    def kelurahan_nodes(self, row: int) -> NDArray[np.int64]:
        """Road nodes inside kelurahan `row` (empty for a kelurahan without roads)."""
        return np.flatnonzero(self.node_kelurahan == row)

    @property
    def kelurahan_has_roads(self) -> NDArray[np.bool_]:
        """Whether each kelurahan has at least one road node inside it."""
        return np.bincount(self.node_kelurahan, minlength=self.n_kelurahan) > 0

    @property
    def is_seribu(self) -> NDArray[np.bool_]:
        """Whether each kelurahan is in the Kepulauan Seribu (islands, reached by boat)."""
        return self.table["kode_kota"].astype(str).str.startswith(SERIBU_KOTA_CODE).to_numpy()

    def snap(
        self, lon: ArrayLike, lat: ArrayLike, region: ArrayLike
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Nearest road node of the given region for each point, and the distance to it (m)."""
        lon_a, lat_a = np.atleast_1d(np.asarray(lon, float)), np.atleast_1d(np.asarray(lat, float))
        region_a = np.broadcast_to(np.asarray(region), lon_a.shape)
        nodes = np.empty(len(lon_a), dtype=np.int64)
        for r in np.unique(region_a):
            tree, members = self._region_tree(int(r))
            pick = region_a == r
            _, i = tree.query(np.c_[lon_a[pick], lat_a[pick]] * M_PER_DEGREE)
            nodes[pick] = members[i]
        dist = haversine_m(lon_a, lat_a, self.network.node_x[nodes], self.network.node_y[nodes])
        return nodes, dist

    def _region_tree(self, region: int) -> tuple[cKDTree, NDArray[np.int64]]:
        if region not in self._trees:
            members = self.tables.region_nodes(region)
            if len(members) == 0:  # a kecamatan with no roads at all: use the whole network
                members = np.arange(self.network.n_nodes)
            xy = np.c_[self.network.node_x[members], self.network.node_y[members]] * M_PER_DEGREE
            self._trees[region] = (cKDTree(xy), members)
        return self._trees[region]

    def congestion(self, hour: ArrayLike) -> NDArray[np.float64]:
        """Travel-time multiplier for each hour of day (0-23; larger values wrap)."""
        factors = np.asarray(self.speeds.congestion_by_hour)
        return factors[np.asarray(hour, dtype=np.int64) % 24]

    def travel_time_s(
        self,
        lon1: ArrayLike,
        lat1: ArrayLike,
        lon2: ArrayLike,
        lat2: ArrayLike,
        *,
        hour: ArrayLike = 3,
    ) -> NDArray[np.float64]:
        """Seconds to ride from point 1 to point 2, both in one kecamatan (vectorised).

        Parameters
        ----------
        lon1, lat1, lon2, lat2
            Points in degrees.
        hour
            Hour of day of departure, for the congestion factor (default 3: free flow).

        Returns
        -------
        seconds
            Access leg + network time x congestion + access leg, or the straight-line fallback
            where a kelurahan has no road (boat for Kepulauan Seribu).
        """
        lon1_a, lat1_a, lon2_a, lat2_a, factor = np.broadcast_arrays(
            *(np.atleast_1d(np.asarray(a, float)) for a in (lon1, lat1, lon2, lat2)),
            self.congestion(np.atleast_1d(hour)),
        )
        k1 = self.kelurahan.locate_many(lon1_a, lat1_a)
        k2 = self.kelurahan.locate_many(lon2_a, lat2_a)
        if np.any(k1 < 0) or np.any(k2 < 0):
            msg = "travel_time_s: a point lies outside Jakarta"
            raise CoordinateError(msg)
        region = self.kelurahan_region[k1]
        if np.any(region != self.kelurahan_region[k2]):
            msg = "travel_time_s: both points must lie in one kecamatan (crews are pooled at most there)"
            raise CoordinateError(msg)
        s = self.speeds
        straight_m = haversine_m(lon1_a, lat1_a, lon2_a, lat2_a)
        seribu = self.is_seribu[k1]
        off_network = ~(self.kelurahan_has_roads[k1] & self.kelurahan_has_roads[k2]) | seribu
        result = np.where(
            seribu,
            straight_m / (s.boat_speed_kph / 3.6),
            straight_m * s.detour_factor / (s.default_speed_kph / 3.6) * factor,
        )
        on = ~off_network
        if on.any():
            n1, d1 = self.snap(lon1_a[on], lat1_a[on], region[on])
            n2, d2 = self.snap(lon2_a[on], lat2_a[on], region[on])
            access = (d1 + d2) * s.detour_factor / (s.access_speed_kph / 3.6)
            result[on] = access + self.tables.node_time_s(n1, n2) * factor[on]
        return result


def city_digest(paths: DataPaths, speeds: SpeedSettings, road_file: Path) -> str:
    """Hash of every input file's bytes and of the speed settings: the cache key."""
    h = hashlib.sha1(CACHE_VERSION.encode(), usedforsecurity=False)
    files = [paths.kelurahan, road_file]
    if road_file.suffix.lower() == ".shp":
        files += [road_file.with_suffix(ext) for ext in (".dbf", ".shx")]
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    h.update(speeds.network_digest().encode())
    return h.hexdigest()[:16]


def load_city(
    data_dir: str | Path | None = None,
    *,
    speeds: SpeedSettings | None = None,
    road_file: Path | None = None,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> City:
    """Load the city from a data directory, building and caching the network on first use.

    Parameters
    ----------
    data_dir
        The data directory (``--data``), else ``TWIN_DATA_DIR``, else ``data/jakarta``.
    speeds
        Speed assumptions (a scenario's ``[city]`` section); defaults from `twin.city.speeds`.
    road_file
        A road source other than the data directory's line file: ``.graphml`` or ``.osm``.
    cache_dir
        Where built networks are kept (default `default_cache_dir`).
    progress
        Show a progress bar while building travel tables.

    Returns
    -------
    city
        The loaded city.
    """
    paths = resolve_data_dir(data_dir)
    speeds = speeds or SpeedSettings()
    kelurahan = KelurahanIndex(load_kelurahan(paths.require(paths.kelurahan)))
    road_file = road_file or paths.require(paths.roads)
    offices = read_offices(paths.require(paths.offices), list(kelurahan.codes))

    kec_codes, kel_region = np.unique(
        kelurahan.table["kode_kecamatan"].astype(str), return_inverse=True
    )
    folder = (cache_dir or default_cache_dir()) / f"city-{city_digest(paths, speeds, road_file)}"
    started = time.perf_counter()
    if (folder / "complete").is_file():
        network = RoadNetwork.load(folder / "network.npz")
        tables = TravelTables.load(folder / "tables")
        node_kel = np.load(folder / "node_kelurahan.npy")
        status = "hit"
    else:
        network = load_network_file(road_file, speeds)
        node_kel = kelurahan.locate_many(network.node_x, network.node_y)
        node_region = np.where(node_kel >= 0, kel_region[np.maximum(node_kel, 0)], -1).astype(
            np.int32
        )
        tables = _build_tables(network, node_region, progress=progress)
        _write_cache(folder, network, tables, node_kel)
        tables = TravelTables.load(folder / "tables")
        status = "built"
    seconds = time.perf_counter() - started
    city = City(
        paths=paths,
        speeds=speeds,
        kelurahan=kelurahan,
        network=network,
        tables=tables,
        node_kelurahan=node_kel,
        depots=offices,
        kecamatan_codes=kec_codes.astype(str),
        kelurahan_region=kel_region.astype(np.int64),
        cache={"status": status, "path": str(folder), "seconds": round(seconds, 3)},
    )
    _snap_depots(city)
    city.warnings.extend(_quality_warnings(city))
    return city


def _build_tables(
    network: RoadNetwork, node_region: NDArray[np.int32], *, progress: bool
) -> TravelTables:
    from tqdm import tqdm

    with tqdm(
        total=int((node_region >= 0).sum()),
        desc="travel tables",
        unit="node",
        disable=not progress,
        leave=False,
    ) as bar:
        return build_travel_tables(network, node_region, progress=bar.update)


def _write_cache(
    folder: Path, network: RoadNetwork, tables: TravelTables, node_kel: NDArray[np.int64]
) -> None:
    """Write into a temporary folder of this process's own, then rename it into place.

    A killed build never leaves a half cache, and processes building the same city at once (a
    pool's workers on a cold cache) never trip over each other: the first rename wins, the
    others (the same inputs, so the same bytes) discard theirs.
    """
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", suffix=".tmp", dir=folder.parent))
    network.save(tmp / "network.npz")
    tables.save(tmp / "tables")
    np.save(tmp / "node_kelurahan.npy", node_kel)
    (tmp / "complete").write_text(json.dumps({"version": CACHE_VERSION}))
    if folder.is_dir() and not (folder / "complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)  # left by an older build: never complete
    try:
        tmp.rename(folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "complete").is_file():
            raise


def _snap_depots(city: City) -> None:
    d = city.depots
    nodes, dist = city.snap(d["lon"].to_numpy(), d["lat"].to_numpy(), city.kelurahan_region)
    city.depots = d.assign(node=nodes, snap_m=dist.round(1))


def _quality_warnings(city: City) -> list[str]:
    warnings = []
    table = city.table
    no_roads = ~city.kelurahan_has_roads
    mainland = no_roads & ~city.is_seribu
    if mainland.any():
        names = ", ".join(table.loc[mainland, "kelurahan"].astype(str))
        warnings.append(
            f"{int(mainland.sum())} mainland kelurahan have no road node (travel by straight line x "
            f"{city.speeds.detour_factor} at {city.speeds.default_speed_kph} km/h): {names}"
        )
    seribu = no_roads & city.is_seribu
    if seribu.any():
        warnings.append(
            f"{int(seribu.sum())} Kepulauan Seribu kelurahan have no roads (islands: boat at "
            f"{city.speeds.boat_speed_kph} km/h)"
        )
    far = city.depots["snap_m"].to_numpy() > FAR_SNAP_M
    far &= city.kelurahan_has_roads
    if far.any():
        names = ", ".join(table.loc[far, "kelurahan"].astype(str))
        warnings.append(
            f"{int(far.sum())} depot(s) lie over {FAR_SNAP_M:.0f} m from a road node: {names}"
        )
    return warnings
