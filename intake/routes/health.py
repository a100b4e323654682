"""Liveness and readiness."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter

from intake.db import SCHEMA_VERSION
from intake.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(service: ServiceDep) -> dict[str, object]:
    """The service is up and its database answers."""
    with service.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return {
        "status": "ok",
        "database": service.engine.dialect.name,
        "schema_version": SCHEMA_VERSION,
    }
