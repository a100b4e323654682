"""Public KPIs of complaint handling, computed by the twin's own KPI code (`twin.kpis`).

Aggregates only: counts, shares and hours, never a report. A KPI that cannot be computed (no
report resolved yet) is ``null``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from fastapi import APIRouter
from pydantic import BaseModel, Field

from intake import workflow
from intake.deps import ServiceDep
from intake.errors import ApiError
from twin.kpis import kpis_by, rank_kelurahan, report_kpis

RANKED = 15

router = APIRouter(prefix="/api/v1/kpis", tags=["kpis"])


class Kpis(BaseModel):
    """Headline KPIs of a set of reports (hours from receipt; null when not computable)."""

    reports: int
    resolved: int
    open_at_end: int
    resolved_share: float | None = None
    mean_coordination_h: float | None = None
    share_coordinated_within_6h: float | None = None
    mean_resolution_h: float | None = None
    share_resolved_within_7d: float | None = None
    p50_resolution_h: float | None = None
    p90_resolution_h: float | None = None
    p99_resolution_h: float | None = None


class KelurahanKpis(Kpis):
    """The KPIs of one kelurahan."""

    kelurahan_code: str


class RankedKelurahan(KelurahanKpis):
    """A kelurahan's KPIs and its rank (1 = fastest mean resolution)."""

    rank: int


class Ranking(BaseModel):
    """Best and worst kelurahan by mean resolution time."""

    count: int = Field(description="kelurahan ranked (those with at least one report)")
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
def kelurahan_kpis(code: str, service: ServiceDep) -> KelurahanKpis:
    """Headline KPIs of one kelurahan's reports (by its Kemendagri code, e.g. 31.71.01.1001)."""
    if code not in set(service.kelurahan.codes.tolist()):
        raise ApiError(404, f"unknown kelurahan code {code!r}")
    with service.engine.connect() as conn:
        frame = workflow.report_times(conn, kelurahan_code=code)
    return KelurahanKpis(kelurahan_code=code, **_finite(dict(report_kpis(frame))))


@router.get("/ranking", response_model=Ranking)
def ranking(service: ServiceDep) -> Ranking:
    """The 15 best and 15 worst kelurahan by mean resolution time, with their KPIs."""
    with service.engine.connect() as conn:
        frame = workflow.report_times(conn)
    total = len(service.kelurahan.codes)
    if frame.empty:
        return Ranking(count=0, total_kelurahan=total, best=[], worst=[])
    ranked: pd.DataFrame = rank_kelurahan(kpis_by(frame, "kelurahan"))
    rows = [
        RankedKelurahan(kelurahan_code=str(code), **_finite({str(k): v for k, v in row.items()}))
        for code, row in ranked.iterrows()
    ]
    return Ranking(
        count=len(rows), total_kelurahan=total, best=rows[:RANKED], worst=rows[::-1][:RANKED]
    )
