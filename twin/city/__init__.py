"""The city: Jakarta's inputs (kelurahan, roads, offices, population) and what is built from them.

`load_city` gives a `City`: the kelurahan index, the road network with speeds, travel-time tables
per kecamatan, one PPSU depot per kelurahan; cached by a hash of the inputs.
"""

from twin.city.assembly import City, default_cache_dir, load_city
from twin.city.datadir import DataPaths, resolve_data_dir
from twin.city.kelurahan import KelurahanIndex, load_kelurahan

__all__ = [
    "City",
    "DataPaths",
    "KelurahanIndex",
    "default_cache_dir",
    "load_city",
    "load_kelurahan",
    "resolve_data_dir",
]
