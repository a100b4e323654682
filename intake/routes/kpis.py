"""Public KPIs of complaint handling, computed by the twin's own KPI code (`twin.kpis`).

Aggregates only: counts, shares and hours, never a report. The figures are the twin's, for the
same records: reports still open at ``as_of`` are censored there (Kaplan-Meier means restricted
to the longest observation, percentiles, the share censored), and an open report is a miss in
every "within" share. A KPI is ``null`` only without data (no report), or for a percentile the
reports have not reached yet (more than that share still open). Each result is reused for a few
seconds (`intake.cache`); ``as_of`` says when it was computed and ``Cache-Control`` how long it
stays current.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from intake import workflow
from intake.deps import ServiceDep
from intake.errors import ApiError
from twin.kpis import MIN_RANKED_REPORTS, kpis_by, rank_kelurahan, report_kpis

RANKED = 15

router = APIRouter(prefix="/api/v1/kpis", tags=["kpis"])


class Kpis(BaseModel):
    """Headline KPIs of a set of reports (hours from receipt; open reports censored at as_of)."""

    as_of: datetime = Field(description="when these figures were computed (UTC)")
    reports: int
    resolved: int
    open_at_end: int
    resolved_share: float | None = None
    mean_coordination_h: float | None = Field(
        None, description="Kaplan-Meier mean restricted to mean_horizon_h (open reports count)"
    )
    share_coordinated_within_6h: float | None = None
    censored_coordination_share: float | None = None
    mean_resolution_h: float | None = Field(
        None, description="Kaplan-Meier mean restricted to mean_horizon_h (open reports count)"
    )
    share_resolved_within_7d: float | None = None
    censored_resolution_share: float | None = None
    p50_resolution_h: float | None = Field(None, description="null: not reached yet")
    p90_resolution_h: float | None = Field(None, description="null: not reached yet")
    p99_resolution_h: float | None = Field(None, description="null: not reached yet")
    mean_resolution_of_resolved_h: float | None = Field(
        None, description="mean over the resolved reports only (how figures are often published)"
    )
    mean_horizon_h: float | None = Field(None, description="horizon of the restricted means")


class KelurahanKpis(Kpis):
    """The KPIs of one kelurahan."""

    kelurahan_code: str


class RankedKelurahan(KelurahanKpis):
    """A kelurahan's KPIs and its rank (1 = fastest mean resolution)."""

    rank: int
    kelurahan_name: str
    kecamatan: str
    kota: str


class Ranking(BaseModel):
    """Best and worst kelurahan by mean resolution time."""

    as_of: datetime = Field(description="when this ranking was computed (UTC)")
    count: int = Field(
        description="kelurahan ranked (those with at least INTAKE_RANKING_MIN_REPORTS reports, "
        f"default {MIN_RANKED_REPORTS})"
    )
    total_kelurahan: int = Field(description="kelurahan in Jakarta")
    best: list[RankedKelurahan] = Field(description="up to 15, best first")
    worst: list[RankedKelurahan] = Field(
        description="up to 15, worst first (no resolved report ranks last)"
    )


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities as None (JSON has no NaN); numpy scalars as Python numbers."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if hasattr(value, "item"):
            value = value.item()
        out[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    return out


@router.get(
    "/kelurahan/{code}",
    response_model=KelurahanKpis,
    responses={404: {"description": "unknown kelurahan code"}},
)
def kelurahan_kpis(code: str, service: ServiceDep, response: Response) -> KelurahanKpis:
    """Headline KPIs of one kelurahan's reports (by its Kemendagri code, e.g. 31.71.01.1001)."""
    if code not in set(service.kelurahan.codes.tolist()):
        raise ApiError(404, f"unknown kelurahan code {code!r}")

    def compute() -> dict[str, Any]:
        now = workflow.hours_since_epoch(datetime.now(UTC))
        with service.engine.connect() as conn:
            frame = workflow.report_times(conn, kelurahan_code=code)
        return _finite(dict(report_kpis(frame, end_h=now)))

    values, as_of = _recent(service, response, ("kelurahan", code), compute)
    return KelurahanKpis(kelurahan_code=code, as_of=as_of, **values)


@router.get("/ranking", response_model=Ranking)
def ranking(service: ServiceDep, response: Response) -> Ranking:
    """The 15 best and 15 worst kelurahan by mean resolution time, with their KPIs."""

    def compute() -> list[dict[str, Any]]:
        now = workflow.hours_since_epoch(datetime.now(UTC))
        with service.engine.connect() as conn:
            frame = workflow.report_times(conn)
        if frame.empty:
            return []
        ranked: pd.DataFrame = rank_kelurahan(
            kpis_by(frame, "kelurahan", end_h=now), min_reports=service.settings.ranking_min_reports
        )
        ranked = ranked[ranked["rank"] > 0]  # 0: too few reports to be ranked
        names = service.kelurahan.table.set_index("kode_kemendagri")
        return [
            {
                "kelurahan_code": str(code),
                "kelurahan_name": str(names.at[code, "kelurahan"]),
                "kecamatan": str(names.at[code, "kecamatan"]),
                "kota": str(names.at[code, "kota"]),
                **_finite({str(k): v for k, v in row.items()}),
            }
            for code, row in ranked.iterrows()
        ]

    ranked, as_of = _recent(service, response, ("ranking",), compute)
    rows = [RankedKelurahan(as_of=as_of, **row) for row in ranked]
    return Ranking(
        as_of=as_of,
        count=len(rows),
        total_kelurahan=len(service.kelurahan.codes),
        best=rows[:RANKED],
        worst=rows[::-1][:RANKED],
    )


def _recent(
    service: ServiceDep, response: Response, key: tuple[str, ...], compute: Callable[[], Any]
) -> tuple[Any, datetime]:
    """`compute()` through the service's recent results; tell clients how long it stays current."""
    value, as_of = service.recent_kpis.get(key, compute)
    age = (datetime.now(UTC) - as_of).total_seconds()
    fresh_for = max(0, int(service.settings.kpi_cache_seconds - age))
    response.headers["Cache-Control"] = f"public, max-age={fresh_for}"
    return value, as_of
