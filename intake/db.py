"""The database: schema, versioned migrations and engines for SQLite and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` (an acknowledged report survives a power cut,
not only a killed process) and a busy timeout, so the first requests after a crash wait for
recovery instead of failing. Migrations are numbered functions recorded in ``schema_version``;
`migrate` applies the missing ones in one transaction each.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token", sa.String(36), nullable=False, unique=True),
    sa.Column("service_code", sa.String(40), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("address_string", sa.Text),
    sa.Column("kelurahan_code", sa.String(16), nullable=False, index=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("status", sa.String(12), nullable=False, index=True),
    sa.Column("media_url", sa.Text),
    sa.Column("reporter_name", sa.Text),
    sa.Column("reporter_email", sa.Text),
    sa.Column("reporter_phone", sa.Text),
    sa.Column("device_id", sa.Text),
    sa.Column("claimed_by", sa.Integer),
    sa.Column("crew", sa.Text),
    sa.Column("agency", sa.Text),
    sa.Column("photo_path", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("coordinated_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
)

history = sa.Table(
    "status_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id"), nullable=False, index=True),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

officers = sa.Table(
    "officers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kelurahan_code", sa.String(16), nullable=False),
    sa.Column("role", sa.String(12), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

idempotency = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("api_key_id", sa.Integer, nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("api_key_id", "key", name="uq_idempotency_key"),
)

# the outbox: every change of a report, written in the transaction that makes the change
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # uuid4, receivers dedupe on it; no index: nothing looks an event up by it, and each index
    # costs every report its insert (read by id ranges only, the primary key)
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id"), nullable=False),
    sa.Column("kelurahan_code", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # JSON of public fields, signed as stored
    sa.Column("dedupe", sa.String(48), unique=True),  # SLA events: once per report and target
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kelurahan_code", sa.String(16), nullable=False, index=True),  # "*": every one
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.String(64), nullable=False),  # kept: it signs every delivery
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id"), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # pending, delivered, dead
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("event_id", "webhook_id", name="uq_delivery"),
    sa.Index("ix_deliveries_due", "state", "next_at"),
)

history_at = sa.Index("ix_status_history_at", history.c.at)  # Open311 updates by time

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


def _v1_initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=[reports, history, api_keys, officers, idempotency])


def _v2_operations(conn: Connection) -> None:
    history_at.create(conn, checkfirst=True)
    metadata.create_all(conn, tables=[events, webhooks, deliveries])


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "reports, history, keys, officers, idempotency", _v1_initial),
    (2, "events outbox, webhooks, deliveries; history by time", _v2_operations),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    dbapi_conn.isolation_level = None  # type: ignore[attr-defined]  # we emit BEGIN ourselves
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, full sync and a busy timeout."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # BEGIN IMMEDIATE: take the write lock at the start, so two writers queue, not deadlock
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    # hide_parameters: a database error in a log must not carry a reporter's contact
    return sa.create_engine(
        url, pool_size=20, max_overflow=20, pool_pre_ping=True, hide_parameters=True
    )


def migrate(engine: Engine) -> int:
    """Apply the migrations the database has not seen; return the schema version."""
    from datetime import UTC, datetime

    with engine.begin() as conn:
        schema_version.create(conn, checkfirst=True)
    with engine.begin() as conn:
        done = {row[0] for row in conn.execute(sa.select(schema_version.c.version))}
    for version, _, apply in MIGRATIONS:
        if version in done:
            continue
        with engine.begin() as conn:
            apply(conn)
            conn.execute(
                schema_version.insert().values(version=version, applied_at=datetime.now(UTC))
            )
    return SCHEMA_VERSION
