from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from tests.synthetic import write_city

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _real_data_dir() -> Path:
    env = os.environ.get("TWIN_DATA_DIR")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data" / "jakarta"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The Jakarta data directory: skipped where absent on a user's machine, never in CI."""
    path = _real_data_dir()
    if not (path / "boundaries" / "kelurahan.geojson").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"Jakarta data directory {path} is missing in CI")
        pytest.skip(f"Jakarta data directory {path} not found (set TWIN_DATA_DIR)")
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
