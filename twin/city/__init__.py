"""The city: Jakarta's inputs (kelurahan, roads, offices, population) and what is built from them.

`load_city` gives a `City`: the kelurahan index, the road network with speeds, travel-time tables
per kecamatan, one PPSU depot per kelurahan; cached by a hash of the inputs.

The public names are re-exported lazily (PEP 562): a command that only needs the data folder's
paths (`twin --help`, `twin serve`) does not import pandas, scipy and geopandas for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.lazy import lazy_exports

if TYPE_CHECKING:
    from twin.city.assembly import City, default_cache_dir, load_city
    from twin.city.datadir import DataPaths, resolve_data_dir
    from twin.city.kelurahan import KelurahanIndex, load_kelurahan

_HOME = {
    "City": "twin.city.assembly",
    "default_cache_dir": "twin.city.assembly",
    "load_city": "twin.city.assembly",
    "DataPaths": "twin.city.datadir",
    "resolve_data_dir": "twin.city.datadir",
    "KelurahanIndex": "twin.city.kelurahan",
    "load_kelurahan": "twin.city.kelurahan",
}


__getattr__ = lazy_exports(__name__, _HOME)


__all__ = [
    "City",
    "DataPaths",
    "KelurahanIndex",
    "default_cache_dir",
    "load_city",
    "load_kelurahan",
    "resolve_data_dir",
]
