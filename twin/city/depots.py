"""PPSU depots: one base per kelurahan, at the kelurahan office, snapped to the road network.

PPSU crews muster at the kantor lurah each shift and ride out from there. The offices file gives
one point per kelurahan (238 published office points, 29 stand-ins inside the polygon); each is
snapped to the nearest road node of its kecamatan, and the snap distance is kept so that an
office far from any mapped road is visible rather than silently moved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.errors import DataError

if TYPE_CHECKING:
    from pathlib import Path

OFFICE_COLUMNS = ("kode_kemendagri", "lon", "lat", "source")


def read_offices(path: Path, kelurahan_codes: list[str]) -> pd.DataFrame:
    """Read the office points, one per kelurahan, in the order of `kelurahan_codes`.

    Parameters
    ----------
    path
        ``offices/kelurahan_offices.csv`` in the data directory.
    kelurahan_codes
        Kemendagri codes of the kelurahan table, in its order.

    Returns
    -------
    offices
        Columns ``kode_kemendagri, lon, lat, source`` (and ``office_name`` when present).
    """
    if not path.is_file():
        msg = f"{path}: missing input file"
        raise DataError(msg)
    try:
        df = pd.read_csv(path, dtype={"kode_kemendagri": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot be read as CSV ({exc})"
        raise DataError(msg) from exc
    missing = [c for c in OFFICE_COLUMNS if c not in df.columns]
    if missing:
        msg = f"{path}: missing column(s) {', '.join(missing)}"
        raise DataError(msg)
    lon = pd.to_numeric(df["lon"], errors="coerce")
    lat = pd.to_numeric(df["lat"], errors="coerce")
    bad = lon.isna() | lat.isna() | (lon.abs() > 180) | (lat.abs() > 90)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # header is line 1
        msg = f"{path}: line {row}: lon/lat missing or out of range ({df['lon'].iloc[row - 2]}, {df['lat'].iloc[row - 2]})"
        raise DataError(msg)
    df = df.assign(lon=lon, lat=lat).drop_duplicates("kode_kemendagri").set_index("kode_kemendagri")
    absent = [c for c in kelurahan_codes if c not in df.index]
    if absent:
        msg = f"{path}: no office for {len(absent)} kelurahan, e.g. {', '.join(absent[:3])}"
        raise DataError(msg)
    keep = [c for c in ("lon", "lat", "source", "office_name") if c in df.columns]
    return df.loc[kelurahan_codes, keep].reset_index()
