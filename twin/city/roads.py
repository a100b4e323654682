"""The street network PPSU crews ride: built from OSM road lines, GraphML, OSM XML or online.

The shipped extract is a line shapefile with an OSM highway class (``TYPE``) and a oneway flag per
line, and no node ids. `network_from_lines` turns it into a routable network the way OSMnx would:
a node wherever a line ends or a vertex is shared by two or more lines (or repeated within one),
an edge between consecutive nodes along a line, one direction for ``oneway=yes``, the reverse
for ``-1``, both otherwise, and only the largest strongly connected component kept, so that
every node can reach every other. Each edge carries ``length`` (m, great-circle), ``speed_kph``
and ``travel_time`` (s) from `twin.city.speeds`.

The network is held as flat numpy arrays (fast to cache and to turn into a sparse matrix for
shortest paths); `RoadNetwork.to_networkx` gives the osmnx-compatible ``MultiDiGraph``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from twin.city.speeds import NON_DRIVABLE, SpeedSettings
from twin.errors import DataError

if TYPE_CHECKING:
    from pathlib import Path

    import geopandas as gpd
    import networkx as nx
    from numpy.typing import NDArray

EARTH_RADIUS_M = 6_371_009.0  # mean radius, as osmnx.distance uses
COORD_DECIMALS = 7  # vertices closer than ~1 cm are the same vertex


def haversine_m(
    lon1: NDArray[np.float64],
    lat1: NDArray[np.float64],
    lon2: NDArray[np.float64],
    lat2: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Great-circle distance in metres between arrays of lon/lat points."""
    lon1, lat1, lon2, lat2 = (np.radians(a) for a in (lon1, lat1, lon2, lat2))
    h = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


@dataclass(slots=True)
class RoadNetwork:
    """A directed road network as arrays; node ids are 0..n-1.

    Attributes
    ----------
    node_x, node_y
        Node longitude and latitude, degrees.
    edge_u, edge_v
        Tail and head node of each directed edge.
    length_m
        Edge length along its geometry, metres.
    speed_kph
        Free-flow speed on the edge, km/h.
    travel_time_s
        Free-flow travel time, seconds.
    highway
        OSM highway class of each edge.
    oneway
        Whether the road is one-way.
    geom_offset
        Edge i's geometry is ``geom_xy[geom_offset[i]:geom_offset[i + 1]]`` (lon, lat rows).
    geom_xy
        Concatenated edge geometries.
    source
        Where the network came from (a file path or a place name).
    """

    node_x: NDArray[np.float64]
    node_y: NDArray[np.float64]
    edge_u: NDArray[np.int64]
    edge_v: NDArray[np.int64]
    length_m: NDArray[np.float64]
    speed_kph: NDArray[np.float64]
    travel_time_s: NDArray[np.float64]
    highway: NDArray[np.str_]
    oneway: NDArray[np.bool_]
    geom_offset: NDArray[np.int64]
    geom_xy: NDArray[np.float64]
    source: str

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_x)

    @property
    def n_edges(self) -> int:
        """Number of directed edges."""
        return len(self.edge_u)

    def road_km(self) -> float:
        """Kilometres of road, counting a two-way street once."""
        one_way_total = self.length_m[self.oneway].sum()
        two_way_total = self.length_m[~self.oneway].sum() / 2
        return float(one_way_total + two_way_total) / 1000

    def csr(self, weight: NDArray[np.float64] | None = None) -> sp.csr_array:
        """Sparse adjacency matrix weighted by travel time (parallel edges keep the fastest)."""
        w = self.travel_time_s if weight is None else weight
        order = np.lexsort((w, self.edge_v, self.edge_u))
        u, v, w = self.edge_u[order], self.edge_v[order], w[order]
        first = np.r_[True, (u[1:] != u[:-1]) | (v[1:] != v[:-1])]
        # Dijkstra treats an explicit zero as "no edge": keep zero-time edges as a tiny time.
        data = np.maximum(w[first], 1e-6)
        return sp.csr_array((data, (u[first], v[first])), shape=(self.n_nodes, self.n_nodes))

    def save(self, path: Path) -> None:
        """Write the arrays to one ``.npz`` file (the build cache)."""
        np.savez(
            path,
            **{name: getattr(self, name) for name in _ARRAY_FIELDS},
            source=np.array(self.source),
        )

    @classmethod
    def load(cls, path: Path) -> RoadNetwork:
        """Read a network written by `save`."""
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in _ARRAY_FIELDS}
            return cls(**arrays, source=str(z["source"]))

    def to_networkx(self) -> nx.MultiDiGraph:
        """The network as an osmnx-compatible ``MultiDiGraph`` (crs EPSG:4326, x/y, geometry).

        Works with ``osmnx.routing.shortest_path``, ``osmnx.graph_to_gdfs`` and ``osmnx.plot_graph``.
        """
        import networkx as nx
        import shapely

        graph = nx.MultiDiGraph(crs="epsg:4326", simplified=True, source=self.source)
        undirected_degree = np.bincount(
            np.unique(np.sort(np.c_[self.edge_u, self.edge_v], axis=1), axis=0).ravel(),
            minlength=self.n_nodes,
        )
        graph.add_nodes_from(
            (i, {"x": float(x), "y": float(y), "street_count": int(d)})
            for i, (x, y, d) in enumerate(
                zip(self.node_x, self.node_y, undirected_degree, strict=True)
            )
        )
        lines = shapely.linestrings(
            self.geom_xy, indices=np.repeat(np.arange(self.n_edges), np.diff(self.geom_offset))
        )
        seen: dict[tuple[int, int], int] = {}
        for i in range(self.n_edges):
            uv = (int(self.edge_u[i]), int(self.edge_v[i]))
            key = seen[uv] = seen.get(uv, -1) + 1
            graph.add_edge(
                *uv,
                key=key,
                highway=str(self.highway[i]),
                oneway=bool(self.oneway[i]),
                length=float(self.length_m[i]),
                speed_kph=float(self.speed_kph[i]),
                travel_time=float(self.travel_time_s[i]),
                geometry=lines[i],
            )
        return graph


_ARRAY_FIELDS = (
    "node_x",
    "node_y",
    "edge_u",
    "edge_v",
    "length_m",
    "speed_kph",
    "travel_time_s",
    "highway",
    "oneway",
    "geom_offset",
    "geom_xy",
)


def read_road_lines(path: Path) -> gpd.GeoDataFrame:
    """Read the road line file, checking its columns (``TYPE``, ``ONEWAY``) and geometry."""
    from twin.city.geoio import read_vector

    return read_vector(
        path, columns=("TYPE", "ONEWAY"), geom_types=("LineString", "MultiLineString")
    )


def network_from_lines(
    lines: gpd.GeoDataFrame, speeds: SpeedSettings, *, source: str = "lines"
) -> RoadNetwork:
    """Build the routable network from road lines with ``TYPE`` and ``ONEWAY`` columns.

    Parameters
    ----------
    lines
        Road lines in lon/lat; ``TYPE`` is the OSM highway class, ``ONEWAY`` is ``yes``, ``-1``,
        ``no`` or empty.
    speeds
        Speed per highway class.
    source
        A label for where the lines came from.

    Returns
    -------
    network
        The largest strongly connected component, nodes renumbered 0..n-1.
    """
    import shapely

    lines = lines.explode(index_parts=False, ignore_index=True)
    highway_all = lines["TYPE"].fillna("road").astype(str).to_numpy()
    drivable = ~np.isin(highway_all, list(NON_DRIVABLE))
    lines = lines[drivable]
    if len(lines) == 0:
        msg = f"{source}: no drivable road lines"
        raise DataError(msg)
    highway = highway_all[drivable]
    oneway_flag = lines["ONEWAY"].fillna("").astype(str).str.strip().str.lower().to_numpy()
    forward = oneway_flag != "-1"
    backward = ~np.isin(oneway_flag, ["yes", "true", "1"])

    xy, line_of = shapely.get_coordinates(lines.geometry.to_numpy(), return_index=True)
    xy = xy[:, :2]
    _, vertex, uses = np.unique(
        np.round(xy, COORD_DECIMALS), axis=0, return_inverse=True, return_counts=True
    )
    vertex = vertex.ravel()
    first = np.r_[True, line_of[1:] != line_of[:-1]]
    last = np.r_[line_of[1:] != line_of[:-1], True]
    lines_per_vertex = np.bincount(np.unique(np.c_[vertex, line_of], axis=0)[:, 0])
    is_node_vertex = (lines_per_vertex > 1) | (uses > lines_per_vertex)
    is_node_vertex[vertex[first | last]] = True
    is_node = is_node_vertex[vertex]

    # Segment i joins position i to i + 1 inside one line; it belongs to the edge that starts at
    # the last node at or before i.
    seg = np.flatnonzero(~last)
    seg_len = haversine_m(xy[seg, 0], xy[seg, 1], xy[seg + 1, 0], xy[seg + 1, 1])
    _, edge_of_seg = np.unique(np.cumsum(is_node)[seg], return_inverse=True)
    n_edges = int(edge_of_seg.max()) + 1
    length = np.bincount(edge_of_seg, weights=seg_len, minlength=n_edges)
    start = np.full(n_edges, len(xy), dtype=np.int64)
    np.minimum.at(start, edge_of_seg, seg)
    stop = np.zeros(n_edges, dtype=np.int64)
    np.maximum.at(stop, edge_of_seg, seg + 1)
    u_vertex, v_vertex = vertex[start], vertex[stop]
    edge_line = line_of[start]
    keep = u_vertex != v_vertex  # a loop back to its own node never shortens a route
    start, stop, u_vertex, v_vertex, edge_line, length = (
        a[keep] for a in (start, stop, u_vertex, v_vertex, edge_line, length)
    )

    fwd, bwd = forward[edge_line], backward[edge_line]
    one_way = ~(fwd & bwd)
    tails = np.r_[u_vertex[fwd], v_vertex[bwd]]
    heads = np.r_[v_vertex[fwd], u_vertex[bwd]]
    geom_from = np.r_[start[fwd], stop[bwd]]
    geom_to = np.r_[stop[fwd], start[bwd]]
    edge_src = np.r_[np.flatnonzero(fwd), np.flatnonzero(bwd)]

    # Geometry of each directed edge: the coordinate slice, reversed for the backward copies.
    counts = np.abs(geom_to - geom_from) + 1
    step = np.sign(geom_to - geom_from)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    geom_xy = xy[np.repeat(geom_from, counts) + np.repeat(step, counts) * within]
    geom_offset = np.r_[0, np.cumsum(counts)]

    hw = highway[edge_line][edge_src]
    return _largest_component(
        vertex_xy=_vertex_coords(xy, vertex),
        tails=tails,
        heads=heads,
        length_m=length[edge_src],
        highway=hw,
        oneway=one_way[edge_src],
        speed_kph=np.array([speeds.speed_kph(h) for h in hw], dtype=np.float64),
        geom_offset=geom_offset,
        geom_xy=geom_xy,
        source=source,
    )


def _vertex_coords(xy: NDArray[np.float64], vertex: NDArray[np.int64]) -> NDArray[np.float64]:
    out = np.empty((int(vertex.max()) + 1, 2))
    out[vertex] = xy
    return out


def _largest_component(
    *,
    vertex_xy: NDArray[np.float64],
    tails: NDArray[np.int64],
    heads: NDArray[np.int64],
    length_m: NDArray[np.float64],
    highway: NDArray[Any],
    oneway: NDArray[np.bool_],
    speed_kph: NDArray[np.float64],
    geom_offset: NDArray[np.int64],
    geom_xy: NDArray[np.float64],
    source: str,
    travel_time_s: NDArray[np.float64] | None = None,
) -> RoadNetwork:
    """Keep the largest strongly connected component and renumber its nodes 0..n-1."""
    n = len(vertex_xy)
    if len(tails) == 0:
        msg = f"{source}: the road network has no edges"
        raise DataError(msg)
    adj = sp.csr_array((np.ones(len(tails)), (tails, heads)), shape=(n, n))
    _, label = connected_components(adj, directed=True, connection="strong")
    used = np.zeros(n, dtype=bool)
    used[tails] = used[heads] = True
    sizes = np.bincount(label[used])
    biggest = int(np.argmax(sizes))
    in_comp = (label == biggest) & used
    new_id = np.full(n, -1, dtype=np.int64)
    new_id[in_comp] = np.arange(in_comp.sum())
    keep = in_comp[tails] & in_comp[heads]
    counts = np.diff(geom_offset)[keep]
    take = np.repeat(geom_offset[:-1][keep], counts) + (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    tt = length_m / (speed_kph / 3.6) if travel_time_s is None else travel_time_s
    return RoadNetwork(
        node_x=vertex_xy[in_comp, 0].copy(),
        node_y=vertex_xy[in_comp, 1].copy(),
        edge_u=new_id[tails[keep]],
        edge_v=new_id[heads[keep]],
        length_m=length_m[keep],
        speed_kph=speed_kph[keep],
        travel_time_s=tt[keep],
        highway=np.asarray(highway[keep], dtype=str),
        oneway=oneway[keep],
        geom_offset=np.r_[0, np.cumsum(counts)],
        geom_xy=geom_xy[take],
        source=source,
    )


def network_from_graph(
    graph: nx.MultiDiGraph, speeds: SpeedSettings | None, *, source: str
) -> RoadNetwork:
    """Convert an osmnx ``MultiDiGraph`` (from GraphML, OSM XML or a download).

    Parameters
    ----------
    graph
        Nodes with ``x``/``y`` in lon/lat; edges with ``length`` (m).
    speeds
        Speed per highway class to compute ``travel_time``; None to require that every edge
        already has ``travel_time`` (as a GraphML from ``ox.add_edge_travel_times`` does).
    source
        The file or place name, used in error messages.
    """
    if graph.number_of_edges() == 0:
        msg = f"{source}: the graph has no edges"
        raise DataError(msg)
    crs = str(graph.graph.get("crs", "epsg:4326")).lower()
    if crs not in {"epsg:4326", "wgs84"}:
        msg = f"{source}: graph CRS is {crs}; project it back to EPSG:4326 (ox.project_graph(G, to_latlong=True))"
        raise DataError(msg)
    nodes = list(graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    try:
        vertex_xy = np.array(
            [[float(graph.nodes[n]["x"]), float(graph.nodes[n]["y"])] for n in nodes]
        )
    except KeyError as exc:
        msg = f"{source}: a node has no {exc} coordinate"
        raise DataError(msg) from exc
    tails, heads, length, highway, oneway, tt, pieces = [], [], [], [], [], [], []
    for u, v, data in graph.edges(data=True):
        if "length" not in data:
            msg = f"{source}: edge ({u}, {v}) has no 'length' attribute"
            raise DataError(msg)
        if speeds is None and "travel_time" not in data:
            msg = (
                f"{source}: edge ({u}, {v}) has no 'travel_time' attribute; add it with "
                "ox.add_edge_speeds(G) and ox.add_edge_travel_times(G) before saving"
            )
            raise DataError(msg)
        hw = data.get("highway", "road")
        tails.append(index[u])
        heads.append(index[v])
        length.append(float(data["length"]))
        highway.append(str(hw[0] if isinstance(hw, list) else hw))
        oneway.append(str(data.get("oneway", False)).lower() in {"true", "yes", "1"})
        tt.append(float(data.get("travel_time", np.nan)))
        geom = data.get("geometry")
        pieces.append(
            np.asarray(geom.coords)[:, :2] if geom is not None else vertex_xy[[index[u], index[v]]]
        )
    hw_arr = np.array(highway, dtype=str)
    length_arr = np.array(length)
    if speeds is None:
        tt_arr = np.array(tt)
        speed = np.where(tt_arr > 0, length_arr / np.maximum(tt_arr, 1e-9) * 3.6, 0.0)
    else:
        speed = np.array([speeds.speed_kph(h) for h in hw_arr])
        tt_arr = length_arr / (speed / 3.6)
    if not np.all(np.isfinite(tt_arr) & (tt_arr >= 0)):
        msg = f"{source}: some edges have a negative or non-numeric travel_time"
        raise DataError(msg)
    return _largest_component(
        vertex_xy=vertex_xy,
        tails=np.array(tails, dtype=np.int64),
        heads=np.array(heads, dtype=np.int64),
        length_m=length_arr,
        highway=hw_arr,
        oneway=np.array(oneway, dtype=bool),
        speed_kph=speed,
        geom_offset=np.r_[0, np.cumsum([len(p) for p in pieces])].astype(np.int64),
        geom_xy=np.concatenate(pieces),
        source=source,
        travel_time_s=tt_arr,
    )


def load_network_file(path: Path, speeds: SpeedSettings) -> RoadNetwork:
    """Build a network from a road file, chosen by its suffix.

    ``.shp``/``.gpkg``/``.geojson``: road lines (this project's extract format); ``.graphml``: an
    osmnx GraphML whose edges carry ``travel_time``; ``.osm``/``.xml``: OSM XML, speeds from
    `speeds`.
    """
    import osmnx as ox

    if not path.is_file():
        msg = f"{path}: missing road network file"
        raise DataError(msg)
    suffix = path.suffix.lower()
    try:
        if suffix == ".graphml":
            return network_from_graph(ox.load_graphml(path), None, source=str(path))
        if suffix in {".osm", ".xml"}:
            graph = ox.graph_from_xml(path, simplify=True, retain_all=False)
            return network_from_graph(graph, speeds, source=str(path))
    except DataError:
        raise
    except Exception as exc:  # parser errors vary by format; the user needs the file and the cause
        msg = f"{path}: cannot be read as a road network ({type(exc).__name__}: {exc})"
        raise DataError(msg) from exc
    return network_from_lines(read_road_lines(path), speeds, source=str(path))


def network_from_place(
    place: str, speeds: SpeedSettings
) -> RoadNetwork:  # pragma: no cover - online
    """Download the drivable network of a place with ``ox.graph_from_place`` (needs internet)."""
    import osmnx as ox

    graph = ox.graph_from_place(place, network_type="drive")
    return network_from_graph(graph, speeds, source=f"place:{place}")
