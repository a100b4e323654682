"""The latest forecast of the twin: ``GET /api/v1/forecast``.

The forecast is computed off the request path: `twin serve --forecast-every MINUTES` runs
`twin forecast` on a schedule, in a process of its own, into ``settings.forecast_dir``; this
route only reads the file it wrote last (written whole, then renamed into place). Intake never
imports the model. Aggregates only (per kelurahan and the whole city), never a report.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Response

from intake.deps import ServiceDep
from intake.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["forecast"])


@router.get(
    "/forecast",
    responses={
        200: {"description": "the latest forecast: KPIs, breaches, backlog by hour, kelurahan"},
        404: {"description": "no forecast computed yet"},
    },
)
def latest_forecast(service: ServiceDep, response: Response) -> dict[str, Any]:
    """The twin's latest forecast from the live backlog (see ``as_of`` and ``hours``)."""
    path = service.settings.forecast_dir / "forecast.json"
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ApiError(404, "no forecast yet: run twin serve --forecast-every MINUTES") from None
    except (OSError, ValueError):
        raise ApiError(503, "the forecast is being replaced: try again shortly") from None
    response.headers["Cache-Control"] = "public, max-age=60"
    return document
