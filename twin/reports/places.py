"""Kelurahan as people know them: name, kecamatan and kota beside every code in a report."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import geopandas as gpd

PLACE_COLUMNS = ("kelurahan", "kecamatan", "kota")


def short_kota(name: str) -> str:
    """``Kota Administrasi Jakarta Barat`` -> ``Jakarta Barat`` (the name people use)."""
    for prefix in ("Kota Administrasi ", "Kabupaten Administrasi ", "Kota ", "Kabupaten "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def places_of(table: gpd.GeoDataFrame | pd.DataFrame) -> pd.DataFrame:
    """Name, kecamatan and kota of each kelurahan of the city's `table` (index: code)."""
    out = pd.DataFrame(
        {
            "kelurahan": table["kelurahan"].astype(str).to_numpy(),
            "kecamatan": table["kecamatan"].astype(str).to_numpy(),
            "kota": [short_kota(str(k)) for k in table["kota"]],
        },
        index=pd.Index(table["kode_kemendagri"].astype(str), name="kelurahan_code"),
    )
    return out


@functools.cache
def places(data_dir: str | None = None) -> pd.DataFrame:
    """`places_of` the kelurahan file of the data directory (read once per process)."""
    from twin.city.datadir import resolve_data_dir
    from twin.city.kelurahan import load_kelurahan

    paths = resolve_data_dir(data_dir)
    return places_of(load_kelurahan(paths.require(paths.kelurahan)).drop(columns="geometry"))


def with_places(frame: pd.DataFrame, where: pd.DataFrame) -> pd.DataFrame:
    """`frame` (indexed by kelurahan code) with kelurahan, kecamatan and kota in front and the
    code as a column; name columns `frame` already had are replaced."""
    body = frame.drop(columns=[c for c in ("kelurahan_name", *PLACE_COLUMNS) if c in frame])
    named = where.reindex(body.index.astype(str))
    named.index = body.index
    out = pd.concat([named, body], axis=1)
    out.index.name = "kelurahan_code"
    return out.reset_index()[["kelurahan", "kecamatan", "kota", "kelurahan_code", *body.columns]]


def place_name(code: str, where: pd.DataFrame) -> str:
    """``Pluit (Penjaringan, Jakarta Utara)`` for a code."""
    if code not in where.index:
        return code
    row = where.loc[code]
    return f"{row['kelurahan']} ({row['kecamatan']}, {row['kota']})"


@functools.cache
def mainland(data_dir: str | None = None) -> gpd.GeoDataFrame:
    """The kelurahan polygons without Kepulauan Seribu (maps show the mainland)."""
    from twin.city.assembly import SERIBU_KOTA_CODE
    from twin.city.datadir import resolve_data_dir
    from twin.city.kelurahan import load_kelurahan

    paths = resolve_data_dir(data_dir)
    table = load_kelurahan(paths.require(paths.kelurahan))
    seribu = table["kode_kota"].astype(str).str.startswith(SERIBU_KOTA_CODE)
    return table[~seribu].reset_index(drop=True)
