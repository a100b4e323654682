"""A live backlog written into an intake database, for benchmarks and tests on the real city.

The reports are the demand model's (places, categories and receipt times of the days before the
moment), stored as intake stores them (a report row and its status history), in a mix of open
statuses. Only the composition root may touch both the model and intake's tables.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from twin.city.assembly import City
    from twin.model.scenario import Scenario

# share of open reports per status (and disposition), assumed for a busy afternoon
STATUS_MIX = {
    ("menunggu", None): 0.35,
    ("koordinasi", None): 0.15,
    ("disposisi", "crew"): 0.15,
    ("disposisi", "agency"): 0.15,
    ("proses", None): 0.20,
}


def seed_backlog(
    database_url: str,
    city: City,
    scenario: Scenario,
    *,
    open_reports: int,
    as_of: pd.Timestamp,
    seed: int = 0,
) -> None:
    """Store `open_reports` open reports received in the days before `as_of` (the latest the
    demand model draws; the schema is created when missing)."""

    from intake.db import history, make_engine, migrate, reports
    from twin.model.demand import generate_reports
    from twin.model.streams import RandomStreams
    from twin.model.warm_start import clock_of, on_calendar

    days = max(4, int(np.ceil(1.5 * open_reports / max(scenario.demand.reports_per_day, 1.0))))
    start_date, _, _ = clock_of(as_of - pd.Timedelta(days=days), 0)
    drawn = generate_reports(
        city, on_calendar(scenario, start_date, days + 1), RandomStreams(seed, 99)
    ).frame
    midnight = pd.Timestamp(start_date, tz="Asia/Jakarta").tz_convert("UTC")
    received = midnight + pd.to_timedelta(drawn["received_min"], unit="min")
    drawn = drawn[received < as_of].tail(open_reports)
    received = received[drawn.index]
    n = len(drawn)
    rng = np.random.default_rng(seed)
    kinds = list(STATUS_MIX)
    pick = rng.choice(len(kinds), n, p=np.array(list(STATUS_MIX.values())))
    age = (as_of - received) / pd.Timedelta(minutes=1)
    coordinated = received + pd.to_timedelta(age * rng.uniform(0.05, 0.4, n), unit="min")
    since = coordinated + pd.to_timedelta((as_of - coordinated) / pd.Timedelta(minutes=1) * rng.uniform(0, 0.5, n), unit="min")  # fmt: skip
    codes = city.kelurahan.codes
    categories = list(scenario.demand.categories)
    agencies = list(scenario.agencies) or ["agency"]
    rows, changes = [], []
    received_at = list(received.dt.to_pydatetime())
    coordinated_at = list(coordinated.dt.to_pydatetime())
    since_at = list(since.dt.to_pydatetime())
    for j, row in enumerate(drawn.to_dict(orient="records")):
        status, dispo = kinds[pick[j]]
        at = received_at[j]
        rows.append({
            "id": j + 1, "token": str(uuid.UUID(int=int(rng.integers(2**62)))),
            "service_code": categories[int(row["category"])], "description": "",
            "lat": float(row["lat"]), "lon": float(row["lon"]),
            "kelurahan_code": str(codes[int(row["kelurahan"])]), "channel": "jaki",
            "status": status, "crew": "PPSU 1" if dispo == "crew" or status == "proses" else None,
            "agency": agencies[j % len(agencies)] if dispo == "agency" else None,
            "created_at": at, "updated_at": since_at[j],
            "coordinated_at": None if status == "menunggu" else coordinated_at[j],
            "closed_at": None,
        })  # fmt: skip
        changes.append({"report_id": j + 1, "status": "menunggu", "at": at, "note": None})
        if status != "menunggu":
            changes.append({"report_id": j + 1, "status": status, "at": since_at[j], "note": None})
    engine = make_engine(database_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(reports.insert(), rows)
            conn.execute(history.insert(), changes)
    finally:
        engine.dispose()
