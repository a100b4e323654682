"""Tiny synthetic cities written to a temporary data directory, in the Jakarta data layout.

Five square kelurahan of 0.01 degrees (about 1.1 km) in two kecamatan: four carry a street grid,
the fifth (31.71.02.1003) has no road at all, like the under-mapped south-east of Jakarta.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import LineString, box

LON0, LAT0, SIDE = 106.80, -6.20, 0.01
KELURAHAN = [
    # code, name, column, row
    ("31.71.01.1001", "Satu", 0, 0),
    ("31.71.01.1002", "Dua", 1, 0),
    ("31.71.02.1001", "Tiga", 0, 1),
    ("31.71.02.1002", "Empat", 1, 1),
    ("31.71.02.1003", "Lima", 2, 1),
]


def kelurahan_frame() -> gpd.GeoDataFrame:
    rows = []
    for code, name, col, row in KELURAHAN:
        kec = code[:8]
        rows.append(
            {
                "kode_kemendagri": code,
                "kelurahan": name,
                "kode_kecamatan": kec,
                "kecamatan": f"Kec {kec}",
                "kode_kota": "31.71",
                "kota": "Kota Sintetis",
                "label_lat": LAT0 + (row + 0.5) * SIDE,
                "label_lon": LON0 + (col + 0.5) * SIDE,
                "geometry": box(
                    LON0 + col * SIDE,
                    LAT0 + row * SIDE,
                    LON0 + (col + 1) * SIDE,
                    LAT0 + (row + 1) * SIDE,
                ),
            }
        )
    return gpd.GeoDataFrame(rows, crs=4326)


def road_frame(step: float = 0.002) -> gpd.GeoDataFrame:
    """A street grid over the first two columns: avenues (primary) every 5th line, one one-way."""
    rows = []
    n = round(2 * SIDE / step)
    for i in range(n + 1):
        x = LON0 + i * step
        y = LAT0 + i * step
        kind = "primary" if i % 5 == 0 else "residential"
        oneway = "yes" if i == 3 else ("-1" if i == 7 else None)
        # vertices at every crossing: the extract, like OSM, joins streets at shared vertices
        ticks = [i * step for i in range(n + 1)]
        vertical = LineString([(x, LAT0 + t) for t in ticks])
        horizontal = LineString([(LON0 + t, y) for t in ticks])
        rows.append({"TYPE": kind, "ONEWAY": oneway, "geometry": vertical})
        rows.append({"TYPE": kind, "ONEWAY": None, "geometry": horizontal})
    rows.append(
        {
            "TYPE": "footway",
            "ONEWAY": None,
            "geometry": LineString([(LON0, LAT0), (LON0 + 2 * SIDE, LAT0 + 2 * SIDE)]),
        }
    )
    return gpd.GeoDataFrame(rows, crs=4326)


def write_city(root: Path) -> Path:
    """Write a complete synthetic data directory under `root` and return it."""
    (root / "boundaries").mkdir(parents=True)
    (root / "roads").mkdir()
    (root / "offices").mkdir()
    kel = kelurahan_frame()
    kel.to_file(root / "boundaries" / "kelurahan.geojson", driver="GeoJSON")
    road_frame().to_file(root / "roads" / "jakarta_roads.shp")
    offices = pd.DataFrame(
        {
            "kode_kemendagri": kel["kode_kemendagri"],
            "kelurahan": kel["kelurahan"],
            "lon": kel["label_lon"] + 0.0007,
            "lat": kel["label_lat"] + 0.0003,
            "source": "kantor_lurah_point",
        }
    )
    offices.to_csv(root / "offices" / "kelurahan_offices.csv", index=False)
    return root
