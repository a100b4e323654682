"""Precomputed shortest travel times between road nodes, one table per region (kecamatan).

A crew rides from wherever it is to its next job, so the twin asks "how long from node a to node
b?" hundreds of thousands of times a simulated year. A networkx Dijkstra per question would take
milliseconds each; instead every region (a kecamatan: crews work inside their kelurahan and may be
pooled across the kecamatan) gets an all-pairs table of its nodes, computed once with scipy's
Dijkstra on the region's road subgraph plus a buffer (so a route may leave the region briefly),
and cached. A lookup is then one index into a flat array: many millions per second.

Times are stored as whole seconds in ``uint16`` (at most 18 h; the longest trip inside a kecamatan
is well under one), which keeps all of Jakarta's tables under 100 MB and memory-mapped.
Rows the buffered subgraph cannot complete are recomputed on the whole network.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse.csgraph import dijkstra

from twin.errors import CoordinateError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import scipy.sparse as sp
    from numpy.typing import ArrayLike, NDArray

    from twin.city.roads import RoadNetwork

REGION_BUFFER_M = 1500.0
M_PER_DEGREE = 111_320.0
MAX_TABLE_S = np.iinfo(np.uint16).max


@dataclass(slots=True)
class TravelTables:
    """All-pairs node travel times (free flow, seconds) inside each region.

    Attributes
    ----------
    region_of_node
        Region index of every network node (-1: in no region).
    local_of_node
        Position of every node within its region's table.
    offset
        Start of each region's table in `flat`.
    size
        Number of nodes in each region.
    flat
        All tables, row-major, concatenated: ``flat[offset[r] + i * size[r] + j]``.
    """

    region_of_node: NDArray[np.int32]
    local_of_node: NDArray[np.int32]
    offset: NDArray[np.int64]
    size: NDArray[np.int64]
    flat: NDArray[np.uint16]
    _lists: tuple[list[int], list[int], list[int], list[int], memoryview] | None = None

    def node_time_s(self, a: ArrayLike, b: ArrayLike) -> NDArray[np.uint16]:
        """Free-flow seconds from node `a` to node `b`, both in the same region (vectorised).

        Raises
        ------
        CoordinateError
            If a pair crosses regions (route those through `RoadNetwork` instead).
        """
        a_arr = np.asarray(a)
        b_arr = np.asarray(b)
        region = self.region_of_node[a_arr]
        if np.any(region != self.region_of_node[b_arr]) or np.any(region < 0):
            msg = "travel table lookup across regions: both nodes must lie in one kecamatan"
            raise CoordinateError(msg)
        index = (
            self.offset[region]
            + self.local_of_node[a_arr] * self.size[region]
            + self.local_of_node[b_arr]
        )
        return self.flat[index]

    def lookup_lists(self) -> tuple[list[int], list[int], list[int], list[int], memoryview]:
        """Region, local index, offset, size as lists, and the flat table as a memoryview.

        Item access on these returns plain Python ints, several times faster than indexing
        numpy arrays one element at a time: the form a simulation's inner loop wants.
        """
        if self._lists is None:
            self._lists = (
                self.region_of_node.tolist(),
                self.local_of_node.tolist(),
                self.offset.tolist(),
                self.size.tolist(),
                memoryview(np.ascontiguousarray(self.flat)),  # type: ignore[arg-type]
            )
        return self._lists

    def time_s(self, a: int, b: int) -> int:
        """Free-flow seconds from node `a` to node `b` (scalar fast path)."""
        region_of, local_of, offset, size, flat = self.lookup_lists()
        region = region_of[a]
        if region != region_of[b] or region < 0:
            msg = f"travel table lookup across regions: nodes {a} and {b} are not in one kecamatan"
            raise CoordinateError(msg)
        return flat[offset[region] + local_of[a] * size[region] + local_of[b]]  # type: ignore[no-any-return]

    def table(self, region: int) -> NDArray[np.uint16]:
        """One region's square table (a view, no copy)."""
        n = int(self.size[region])
        start = int(self.offset[region])
        return self.flat[start : start + n * n].reshape(n, n)

    def region_nodes(self, region: int) -> NDArray[np.int64]:
        """Network node ids of one region, in table order."""
        return np.flatnonzero(self.region_of_node == region)

    def save(self, folder: Path) -> None:
        """Write one ``.npy`` per array, so `load` can memory-map the big one."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("region_of_node", "local_of_node", "offset", "size", "flat"):
            np.save(folder / f"{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, folder: Path) -> TravelTables:
        """Read tables written by `save`; the flat table is memory-mapped (shared across processes)."""
        return cls(
            region_of_node=np.load(folder / "region_of_node.npy"),
            local_of_node=np.load(folder / "local_of_node.npy"),
            offset=np.load(folder / "offset.npy"),
            size=np.load(folder / "size.npy"),
            # a plain ndarray view of the map: item access skips the memmap subclass overhead
            flat=np.load(folder / "flat.npy", mmap_mode="r").view(np.ndarray),
        )


def region_subgraph(
    network: RoadNetwork, members: NDArray[np.bool_], *, buffer_m: float = REGION_BUFFER_M
) -> NDArray[np.int64]:
    """Nodes of the bounding box of `members`, widened by `buffer_m` metres."""
    pad = buffer_m / M_PER_DEGREE
    x, y = network.node_x, network.node_y
    mx, my = x[members], y[members]
    inside = (
        (x >= mx.min() - pad)
        & (x <= mx.max() + pad)
        & (y >= my.min() - pad)
        & (y <= my.max() + pad)
    )
    return np.flatnonzero(inside)


def _dijkstra_between(
    graph: sp.csr_array,
    network: RoadNetwork,
    sources: NDArray[np.int64],
    targets: NDArray[np.int64],
    buffer_m: float | None,
) -> NDArray[np.float64]:
    """Dijkstra from `sources` to `targets` on the buffered bounding box (None: whole graph)."""
    if buffer_m is None:
        return dijkstra(graph, directed=True, indices=sources)[:, targets]
    members = np.zeros(network.n_nodes, dtype=bool)
    members[sources] = members[targets] = True
    sub = region_subgraph(network, members, buffer_m=buffer_m)
    position = np.full(network.n_nodes, -1, dtype=np.int64)
    position[sub] = np.arange(len(sub))
    return dijkstra(graph[sub][:, sub], directed=True, indices=position[sources])[
        :, position[targets]
    ]


def shortest_times_s(
    graph: sp.csr_array,
    reverse: sp.csr_array,
    network: RoadNetwork,
    sources: NDArray[np.int64],
    targets: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Shortest free-flow times (s) from `sources` to `targets`, exact on a connected network.

    Solved first on the region's bounding box plus a buffer. Pairs that need a route leaving
    the buffer (typically one node reached only from outside, or a district split by a river
    whose bridge lies beyond) are redone with a wider buffer, then on the whole network, from
    whichever side is smaller: the unfinished rows forward, or the unfinished columns on the
    reversed graph.
    """
    times = _dijkstra_between(graph, network, sources, targets, REGION_BUFFER_M)
    for buffer_m in (4 * REGION_BUFFER_M, None):
        unfinished = ~np.isfinite(times)
        if not unfinished.any():
            break
        rows = np.flatnonzero(unfinished.any(axis=1))
        cols = np.flatnonzero(unfinished.any(axis=0))
        if len(rows) <= len(cols):
            times[rows] = _dijkstra_between(graph, network, sources[rows], targets, buffer_m)
        else:
            times[:, cols] = _dijkstra_between(reverse, network, targets[cols], sources, buffer_m).T
    return times


def _region_table(
    graph: sp.csr_array, reverse: sp.csr_array, network: RoadNetwork, nodes: NDArray[np.int64]
) -> NDArray[np.uint16]:
    times = shortest_times_s(graph, reverse, network, nodes, nodes)
    return np.minimum(np.rint(times), MAX_TABLE_S).astype(np.uint16)


def build_travel_tables(
    network: RoadNetwork,
    region_of_node: NDArray[np.int32],
    *,
    workers: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> TravelTables:
    """Compute every region's all-pairs table, regions spread over a process pool.

    Parameters
    ----------
    network
        The road network (strongly connected).
    region_of_node
        Region index of each node, -1 for nodes in no region.
    workers
        Processes to use (default: one per CPU; 1 runs in this process).
    progress
        Called with the number of nodes done after each region (for a progress bar).
    """
    graph = network.csr()
    reverse = graph.T.tocsr()
    n_regions = int(region_of_node.max()) + 1
    size = np.bincount(region_of_node[region_of_node >= 0], minlength=n_regions).astype(np.int64)
    offset = np.r_[0, np.cumsum(size * size)[:-1]].astype(np.int64)
    flat = np.empty(int((size * size).sum()), dtype=np.uint16)
    local = np.full(network.n_nodes, -1, dtype=np.int32)
    members = {r: np.flatnonzero(region_of_node == r) for r in range(n_regions) if size[r]}
    for nodes in members.values():
        local[nodes] = np.arange(len(nodes))

    def store(region: int, table: NDArray[np.uint16]) -> None:
        flat[offset[region] : offset[region] + table.size] = table.ravel()
        if progress is not None:
            progress(len(table))

    if workers is None:  # a pool only pays off on a city-sized network
        workers = 1 if network.n_nodes < 5000 else os.cpu_count() or 1
    largest_first = sorted(members, key=lambda r: -size[r])
    if workers == 1:
        for r in largest_first:
            store(r, _region_table(graph, reverse, network, members[r]))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(_region_table, graph, reverse, network, members[r]): r
                for r in largest_first
            }
            for future in as_completed(futures):
                store(futures[future], future.result())
    return TravelTables(
        region_of_node=region_of_node.astype(np.int32),
        local_of_node=local,
        offset=offset,
        size=size,
        flat=flat,
    )


def depot_tables(
    network: RoadNetwork, depot_nodes: NDArray[np.int64], region_of_node: NDArray[np.int32]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Out and back times between each depot and every node of its region.

    Returns
    -------
    out_s, back_s
        Arrays of shape (depots, nodes): seconds from the depot, and to it; NaN outside the
        depot's region.
    """
    graph = network.csr()
    reverse = graph.T.tocsr()
    out = np.full((len(depot_nodes), network.n_nodes), np.nan)
    back = np.full_like(out, np.nan)
    depot_region = region_of_node[depot_nodes]
    for region in np.unique(depot_region):
        depots = np.flatnonzero(depot_region == region)
        nodes = np.flatnonzero(region_of_node == region)
        sources = depot_nodes[depots]
        out[np.ix_(depots, nodes)] = shortest_times_s(graph, reverse, network, sources, nodes)
        back[np.ix_(depots, nodes)] = shortest_times_s(reverse, graph, network, sources, nodes)
    return out, back
