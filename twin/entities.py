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
