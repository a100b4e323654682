"""The shared vocabulary of the twin and the intake API: report categories, channels, statuses.

`intake` imports this module (and `twin.kpis`), never the other way round.
"""

from __future__ import annotations

# Service codes (Open311 ``service_code``) and their names, Indonesian first as Jakarta's CRM shows them.
CATEGORIES: dict[str, tuple[str, str]] = {
    "public_order": ("Gangguan ketenteraman dan ketertiban", "Public order disturbance"),
    "garbage": ("Sampah", "Garbage"),
    "illegal_parking": ("Parkir liar", "Illegal parking"),
    "trees": ("Pohon", "Fallen or dangerous trees"),
    "regulation_violation": ("Pelanggaran Perda/Pergub", "Violation of regional regulations"),
    "roads": ("Jalan rusak", "Damaged roads"),
    "drainage": ("Saluran air", "Blocked drains"),
    "street_vendors": ("Pedagang kaki lima", "Street vendors"),
    "street_lights": ("Penerangan jalan", "Street lights"),
    "flood": ("Banjir", "Flooding"),
    "other": ("Lainnya", "Other"),
}

CHANNELS = ("jaki", "qlue", "twitter", "email", "facebook", "sms", "walk_in", "open311")

# Jakarta's statuses, in order. Open311 calls the last one "closed" and the others "open".
STATUSES = ("menunggu", "koordinasi", "disposisi", "proses", "selesai")
OPEN_STATUSES = STATUSES[:-1]

# The life of a report, stage by stage. The twin's ``reports.parquet`` and intake's export
# (``twin export``, ``GET /api/v1/export``) both carry one ``<stage>_at`` timestamp per stage
# (empty while not reached, or where intake records no such moment), so a researcher compares
# simulated and real records with the same code (docs/records.md).
STAGES = (
    "submitted",
    "received",
    "picked_up",
    "coordinated",
    "assigned",
    "arrived",
    "done",
    "closed",
)

# How a report ended: by a PPSU field crew, handed to an agency, or not handled.
OUTCOMES = ("ppsu", "agency", "invalid", "duplicate", "unanswered")

# The columns shared by the twin's reports.parquet and intake's export, in this order.
RECORD_COLUMNS = (
    "report_id",
    "kelurahan_code",
    "kecamatan",
    "kota",
    "category",
    "channel",
    "outcome",
    "lon",
    "lat",
    *(f"{stage}_at" for stage in STAGES),
)
