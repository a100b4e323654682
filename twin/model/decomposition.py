"""Where the time goes: mean resolution split into the stages of a report's life.

Over the reports resolved within the run, the mean time from receipt to closure is the sum of:
waiting for the desk (received -> picked up), desk handling (picked up -> coordinated), waiting
for a team (in a PPSU or agency queue, all visits), travel (riding to the site, all visits),
work on site (with the proof upload, all visits), and the rest: verification of the proof,
an agency's hand-over, and waits between visits (material, a permit, the next day, rework).
The parts add up to the mean resolution exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

PARTS = (
    "waiting_for_desk",
    "desk_handling",
    "waiting_for_team",
    "travel",
    "work",
    "verification_and_waits",
)
GROUPS = ("all", "ppsu", "agency")


def decompose(reports: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Mean hours of each part (and the count and mean resolution) per group of reports.

    Parameters
    ----------
    reports
        A run's records (``received_h, picked_up_h, coordinated_h, closed_h, team_wait_h,
        ride_h, work_h, outcome``).
    """
    done = reports[reports["closed_h"].notna()]
    out: dict[str, dict[str, float]] = {}
    for group in GROUPS:
        g = done if group == "all" else done[done["outcome"] == group]
        parts = {
            "waiting_for_desk": g["picked_up_h"] - g["received_h"],
            "desk_handling": g["coordinated_h"] - g["picked_up_h"],
            "waiting_for_team": g["team_wait_h"],
            "travel": g["ride_h"],
            "work": g["work_h"],
        }
        total = g["closed_h"] - g["received_h"]
        parts["verification_and_waits"] = total - sum(parts.values())
        means = {k: float(v.mean()) if len(g) else float("nan") for k, v in parts.items()}
        out[group] = {
            "reports": float(len(g)),
            "mean_resolution_h": float(total.mean()) if len(g) else float("nan"),
            **{f"{k}_h": v for k, v in means.items()},
        }
    return out


def format_decomposition(parts: dict[str, dict[str, float]]) -> str:
    """A small table: one row per part, one column per group (hours, and share of the mean)."""
    lines = [f"  {'mean resolution, hours':<26}" + "".join(f"{g:>18}" for g in GROUPS)]
    for part in PARTS:
        cells = []
        for g in GROUPS:
            value, total = parts[g][f"{part}_h"], parts[g]["mean_resolution_h"]
            share = value / total if total and np.isfinite(total) and total > 0 else float("nan")
            cells.append(f"{value:>9.2f} ({share:>5.1%})")
        lines.append(f"  {part.replace('_', ' '):<26}" + "".join(f"{c:>18}" for c in cells))
    lines.append(
        f"  {'total':<26}" + "".join(f"{parts[g]['mean_resolution_h']:>18.2f}" for g in GROUPS)
    )
    return "\n".join(lines)
