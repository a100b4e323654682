"""Where the Jakarta inputs live, and one clear error when one is missing.

The data directory is resolved in this order: an explicit ``--data DIR``, the environment variable
``TWIN_DATA_DIR``, then ``data/jakarta`` in the project root. The layout is that of
``shared/data/jakarta`` (see its README): boundaries, roads, offices, population.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from twin.errors import DataError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = PROJECT_ROOT / "data" / "jakarta"
DATA_DIR_ENV = "TWIN_DATA_DIR"


@dataclass(frozen=True, slots=True)
class DataPaths:
    """Paths of every input file inside one data directory.

    Attributes
    ----------
    root
        The data directory itself.
    """

    root: Path

    @property
    def kelurahan(self) -> Path:
        """Kelurahan polygons (GeoJSON)."""
        return self.root / "boundaries" / "kelurahan.geojson"

    @property
    def kecamatan(self) -> Path:
        """Kecamatan polygons (GeoJSON)."""
        return self.root / "boundaries" / "kecamatan.geojson"

    @property
    def rw(self) -> Path:
        """RW polygons with the FLOODPRONE flag (shapefile)."""
        return self.root / "boundaries" / "rw" / "rw_jakarta.shp"

    @property
    def roads(self) -> Path:
        """OSM road lines with TYPE and ONEWAY (shapefile)."""
        return self.root / "roads" / "jakarta_roads.shp"

    @property
    def offices(self) -> Path:
        """One kelurahan office (PPSU depot) point per kelurahan (CSV)."""
        return self.root / "offices" / "kelurahan_offices.csv"

    @property
    def population(self) -> Path:
        """Population per kota (CSV)."""
        return self.root / "population" / "kota_population_2025.csv"

    def require(self, path: Path) -> Path:
        """Return `path` if it is a readable file, else raise a `DataError` naming it."""
        if not self.root.is_dir():
            msg = (
                f"data directory {self.root} does not exist; pass --data DIR or set "
                f"{DATA_DIR_ENV} (in this repository: ../shared/data/jakarta)"
            )
            raise DataError(msg)
        if not path.is_file():
            msg = f"{path}: missing input file (expected in data directory {self.root})"
            raise DataError(msg)
        return path


def resolve_data_dir(data_dir: str | Path | None = None) -> DataPaths:
    """Pick the data directory: argument, then ``TWIN_DATA_DIR``, then ``data/jakarta``.

    Parameters
    ----------
    data_dir
        An explicit directory (the ``--data`` option), or None.

    Returns
    -------
    paths
        The input paths inside the chosen directory (not yet checked for existence).
    """
    if data_dir is not None:
        return DataPaths(Path(data_dir).expanduser().resolve())
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return DataPaths(Path(env).expanduser().resolve())
    return DataPaths(DEFAULT_DATA_DIR)
