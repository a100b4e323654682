"""Where the project's shipped files live (the Jakarta data, the scenarios), and one clear error
when an input is missing.

The data directory is resolved in this order: an explicit ``--data DIR``, the environment variable
``TWIN_DATA_DIR``, then the shipped ``data/jakarta`` (see its README): in a source checkout (also
an editable install) the project's own folder, in an installed package the copy pip put under
``<prefix>/share/jakarta-twin/``. The same holds for ``scenarios/``.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from twin.errors import DataError

SOURCE_ROOT = Path(__file__).resolve().parents[2]
INSTALLED_ROOT = Path(sysconfig.get_path("data")) / "share" / "jakarta-twin"
DATA_DIR_ENV = "TWIN_DATA_DIR"
MANIFEST = "SHA256SUMS"


def _shipped_root() -> Path:
    """The source checkout when the code runs from one, else the installed copy."""
    if (SOURCE_ROOT / "pyproject.toml").is_file() and (SOURCE_ROOT / "data" / "jakarta").is_dir():
        return SOURCE_ROOT
    return INSTALLED_ROOT


PROJECT_ROOT = _shipped_root()
DEFAULT_DATA_DIR = PROJECT_ROOT / "data" / "jakarta"
SCENARIO_DIR = PROJECT_ROOT / "scenarios"


def work_root() -> Path:
    """Where the project writes (``reports_out/``, ``.cache/``, ``var/``): the checkout when the code
    runs from one, else the current folder."""
    return SOURCE_ROOT if PROJECT_ROOT == SOURCE_ROOT else Path.cwd()


def output_root() -> Path:
    """Where outputs go by default: ``reports_out/`` of `work_root`."""
    return work_root() / "reports_out"


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
                f"{DATA_DIR_ENV} (the project ships its data in data/jakarta)"
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


def file_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every input file under `root` (licences and READMEs aside), by relative path."""
    digests = {}
    for path in sorted(root.rglob("*")):
        if (
            path.is_file()
            and path.name != MANIFEST
            and not path.name.startswith(("LICENSE", "README"))
        ):
            digests[path.relative_to(root).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return digests


def manifest_mismatches(root: Path, digests: dict[str, str]) -> list[str]:
    """Files whose content differs from the data directory's ``SHA256SUMS`` (empty: all match,
    or no manifest, as in a user's own data directory)."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        return []
    expected = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.strip().partition("  ")
        if name:
            expected[name] = digest
    problems = [
        f"{name}: content differs from {MANIFEST}" if name in digests else f"{name}: missing"
        for name, digest in expected.items()
        if digests.get(name) != digest
    ]
    return problems
