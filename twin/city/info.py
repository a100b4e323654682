"""What `twin city info` reports: a summary of the loaded city, as a dict and as text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from twin.city.assembly import City


def city_summary(city: City) -> dict[str, Any]:
    """Counts, network size, data gaps, depot snap distances and cache status of a city."""
    table = city.table
    per_kota = table.groupby("kota").size().sort_index()
    snap = city.depots["snap_m"].to_numpy()
    on_roads = city.kelurahan_has_roads
    no_roads = table.loc[~on_roads, "kelurahan"].astype(str).tolist()
    snap_roads = snap[on_roads]
    return {
        "data_dir": str(city.paths.root),
        "kelurahan": len(table),
        "kelurahan_per_kota": {str(k): int(v) for k, v in per_kota.items()},
        "kecamatan": int(table["kode_kecamatan"].nunique()),
        "network_source": city.network.source,
        "nodes": int(city.network.n_nodes),
        "edges": int(city.network.n_edges),
        "road_km": round(city.network.road_km(), 1),
        "kelurahan_without_roads": no_roads,
        "depot_snap_m": {
            "median": round(float(np.median(snap_roads)), 1),
            "p90": round(float(np.percentile(snap_roads, 90)), 1),
            "max": round(float(snap_roads.max()), 1),
            "note": "kelurahan with road nodes only",
        },
        "depots_from_office_points": int((city.depots["source"] == "kantor_lurah_point").sum()),
        "travel_tables_mb": round(city.tables.flat.nbytes / 1e6, 1),
        "cache": city.cache,
        "warnings": city.warnings,
    }


def format_summary(info: dict[str, Any]) -> str:
    """Human-readable lines for the terminal."""
    kota = "\n".join(f"    {name:<45} {n:>4}" for name, n in info["kelurahan_per_kota"].items())
    snap = info["depot_snap_m"]
    lines = [
        f"data directory   {info['data_dir']}",
        f"kelurahan        {info['kelurahan']} in {info['kecamatan']} kecamatan",
        kota,
        f"road network     {info['nodes']:,} nodes, {info['edges']:,} edges, {info['road_km']:,} km "
        f"({info['network_source']})",
        f"no road node     {len(info['kelurahan_without_roads'])} kelurahan",
        f"depot snap       median {snap['median']} m, p90 {snap['p90']} m, max {snap['max']} m "
        f"({info['depots_from_office_points']} depots at published office points)",
        f"travel tables    {info['travel_tables_mb']} MB",
        f"cache            {info['cache']['status']} in {info['cache']['seconds']} s: {info['cache']['path']}",
    ]
    lines += [f"warning          {w}" for w in info["warnings"]]
    return "\n".join(lines)
