from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from tests.synthetic import write_city


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The Jakarta data directory: the project's own (or ``TWIN_DATA_DIR`` when set)."""
    from twin.city.datadir import resolve_data_dir

    path = resolve_data_dir().root
    assert (path / "boundaries" / "kelurahan.geojson").is_file(), f"no Jakarta data in {path}"
    return path


@pytest.fixture(scope="session")
def real_city(real_data_dir: Path):  # type: ignore[no-untyped-def]
    from twin.city.assembly import load_city

    return load_city(real_data_dir)


@pytest.fixture
def synthetic_dir(tmp_path: Path) -> Path:
    return write_city(tmp_path / "data")


@pytest.fixture
def synthetic_city(synthetic_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    from twin.city.assembly import load_city

    return load_city(synthetic_dir, cache_dir=tmp_path / "cache")
