"""The zero-loss audit: a Jepsen-style set check of the clients' ledgers against the database.

Each Locust process writes a ledger of what it sent and what it was told (`read_ledger`); the
reports of the run are read back from the database by the tag in their descriptions
(`read_stored`); `audit` compares the two: every report acknowledged with 201 is stored exactly
once, with what was sent, in the kelurahan the city model puts its point in. `reaudit` does it
again for a finished run folder.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("twin.loadtest")

TAG = re.compile(r"\[lt ([A-Za-z0-9-]+)\]$")


@dataclass(slots=True)
class StoredRow:
    """A stored report of this run, as the audit needs it."""

    id: int
    key: str | None
    lat: float
    lon: float
    kelurahan_code: str
    category: str


def read_ledger(folder: Path) -> list[dict[str, Any]]:
    """Every record of every ledger file of a run (a torn last line is skipped)."""
    records: list[dict[str, Any]] = []
    for path in sorted(folder.glob("ledger-*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("%s: skipped a torn line", path.name)
    return records


def read_stored(database_url: str, run_tag: str) -> list[StoredRow]:
    """The reports of this run in the database: those whose description carries its tag."""
    import sqlalchemy as sa

    from intake.db import make_engine, reports

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    reports.c.id,
                    reports.c.description,
                    reports.c.lat,
                    reports.c.lon,
                    reports.c.kelurahan_code,
                    reports.c.service_code,
                ).where(reports.c.description.like(f"%[lt {run_tag}-%"))
            ).all()
    finally:
        engine.dispose()
    out = []
    for row in rows:
        match = TAG.search(str(row.description))
        out.append(
            StoredRow(
                id=int(row.id),
                key=match.group(1) if match else None,
                lat=float(row.lat),
                lon=float(row.lon),
                kelurahan_code=str(row.kelurahan_code),
                category=str(row.service_code),
            )
        )
    return out


def audit(
    ledger: Iterable[dict[str, Any]],
    stored: Sequence[StoredRow],
    payloads: Sequence[dict[str, Any]],
    relocate: Callable[[Sequence[float], Sequence[float]], list[str | None]],
    *,
    examples: int = 5,
) -> dict[str, Any]:
    """Check the database against what the clients sent and were told.

    A Jepsen "set" check: a report acknowledged with 201 but missing is **lost**; a report
    stored more than once is **duplicated**; a stored report no client ever sent is
    **unexpected**; a report sent, never acknowledged (the run ended, or the answer was lost in
    a kill) may be present or absent. Reports are matched by the key each carries in its
    description, independently of the server's idempotency table. Each stored report must also
    hold the category and point that were sent, and sit in the kelurahan that the city model
    puts that point in (`relocate`) and that the payload was drawn for.

    Parameters
    ----------
    ledger
        Client records: ``{"e": "sent", "k": key, "p": payload number}``,
        ``{"e": "ack", "k": key, "id": report id, "n": attempts, "rp": replayed}``,
        ``{"e": "rej", "k": key, "s": status}``.
    stored
        The run's stored reports (`read_stored`).
    payloads
        The payload pool (``kelurahan``, ``lat``, ``lon``, ``category`` of each).
    relocate
        Kelurahan code (None outside Jakarta) of each point, given longitudes and latitudes.
    examples
        Keys listed per kind of violation.

    Returns
    -------
    result
        Counts (``sent, acknowledged, rejected, stored, lost, duplicates, unexpected,
        wrong_kelurahan, altered, unacknowledged_present, unacknowledged_absent, retried,
        replayed``), ``examples`` of each violation, and ``ok``.
    """
    sent: dict[str, int] = {}
    acks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    rejected: set[str] = set()
    for r in ledger:
        kind, key = r.get("e"), str(r.get("k"))
        if kind == "sent":
            sent[key] = int(r.get("p", -1))
        elif kind == "ack":
            acks[key].append(r)
        elif kind == "rej":
            rejected.add(key)
    by_key: dict[str | None, list[StoredRow]] = defaultdict(list)
    by_id: dict[int, StoredRow] = {}
    for row in stored:
        by_key[row.key].append(row)
        by_id[row.id] = row

    def holds(report_id: Any, key: str) -> bool:
        """Whether the acknowledged id is stored, as the report of this key."""
        try:
            found = by_id.get(int(report_id))
        except (TypeError, ValueError):
            return False
        return found is not None and found.key == key

    lost = [
        key for key, records in acks.items() if not all(holds(r.get("id"), key) for r in records)
    ]
    duplicates = {k: len(v) for k, v in by_key.items() if k is not None and len(v) > 1}
    unexpected = [row.id for row in stored if row.key is None or row.key not in sent]

    located = relocate([row.lon for row in stored], [row.lat for row in stored]) if stored else []
    wrong, altered = [], []
    for row, where in zip(stored, located, strict=True):
        number = sent.get(row.key or "", -1)
        payload = payloads[number] if 0 <= number < len(payloads) else None
        if where != row.kelurahan_code or (payload and payload["kelurahan"] != row.kelurahan_code):
            wrong.append(row.id)
        if payload and (
            abs(payload["lat"] - row.lat) > 1e-9
            or abs(payload["lon"] - row.lon) > 1e-9
            or payload["category"] != row.category
        ):
            altered.append(row.id)

    unacked = set(sent) - set(acks)
    present = sum(1 for k in unacked if k in by_key)
    ack_records = [r for records in acks.values() for r in records]
    result: dict[str, Any] = {
        "sent": len(sent),
        "acknowledged": len(acks),
        "rejected": len(rejected),
        "stored": len(stored),
        "lost": len(lost),
        "duplicates": sum(n - 1 for n in duplicates.values()),
        "unexpected": len(unexpected),
        "wrong_kelurahan": len(wrong),
        "altered": len(altered),
        "unacknowledged_present": present,
        "unacknowledged_absent": len(unacked) - present,
        "retried": sum(1 for r in ack_records if int(r.get("n", 1)) > 1),
        "replayed": sum(1 for r in ack_records if r.get("rp")),
        "examples": {
            "lost": sorted(lost)[:examples],
            "duplicated": sorted(duplicates)[:examples],
            "unexpected_ids": unexpected[:examples],
            "wrong_kelurahan_ids": wrong[:examples],
            "altered_ids": altered[:examples],
        },
    }
    result["ok"] = not any(
        result[k] for k in ("lost", "duplicates", "unexpected", "wrong_kelurahan", "altered")
    )
    return result


def reaudit(run_dir: Path, database_url: str, data_dir: str | None = None) -> dict[str, Any]:
    """Audit a finished run again, e.g. once remote workers' ledgers are copied into it."""
    from loadtest.payloads import read_pool
    from twin.city.datadir import resolve_data_dir
    from twin.city.kelurahan import KelurahanIndex, load_kelurahan

    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    paths = resolve_data_dir(data_dir)
    index = KelurahanIndex(load_kelurahan(paths.require(paths.kelurahan)))

    def relocate(lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
        rows = index.locate_many(list(lons), list(lats))
        return [str(index.codes[r]) if r >= 0 else None for r in rows]

    stored = read_stored(database_url, str(run["run_tag"]))
    return audit(read_ledger(run_dir), stored, read_pool(run_dir).payloads, relocate)
