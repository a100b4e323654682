"""How good was a forecast? Scored against what really happened, beside a naive forecast.

The truth is the full record after the horizon: for each report open at the as-of moment,
whether it breached the 6-hour or the 7-day clock within the horizon (`forecast.breaches`), and
the backlog at each hour. Scores:

- **Brier score** of the breach probabilities: the mean of (p - outcome)^2 over the open
  reports (0 is perfect; lower is better).
- **Backlog error**: the mean absolute error of the expected backlog over the horizon's hours.

The naive forecast says "today's rate continues": a report whose deadline falls in the horizon
breaches with the share of deadlines that were missed over the same length of time before the
moment (0 if its deadline is outside the horizon), and the backlog moves on in a straight line
at the net rate (arrivals minus closures per hour) of that same past window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from twin.experiments.forecast import LiveInput, breaches, hours_since_epoch
from twin.kpis import SLA_COORDINATION_H, SLA_RESOLUTION_H


def backlog_at(received: np.ndarray, closed: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Reports received by each moment of `at` and not closed by it."""
    done = np.sort(np.where(np.isfinite(closed), closed, np.inf))
    return np.searchsorted(np.sort(received), at, side="right") - np.searchsorted(
        done, at, side="right"
    )


def score_forecast(
    forecast: dict[str, Any], live: LiveInput, truth: pd.DataFrame
) -> dict[str, Any]:
    """Brier scores and backlog errors of the twin's forecast and of the naive one.

    Parameters
    ----------
    forecast
        `twin.experiments.forecast.summarise` of the forecast.
    live
        What the forecast started from.
    truth
        Every report as it really went, known past the horizon: ``report_id, received_at,
        coordinated_at, closed_at`` (NaT: not reached).
    """
    start = float(hours_since_epoch(pd.Series([live.as_of]))[0])
    end = start + live.hours
    received = hours_since_epoch(truth["received_at"])
    coordinated = hours_since_epoch(truth["coordinated_at"])
    closed = hours_since_epoch(truth["closed_at"])
    row = pd.Series(np.arange(len(truth)), index=truth["report_id"].to_numpy())
    per = forecast["reports"]
    at = row.reindex(per["report_id"].to_numpy()).to_numpy()
    if np.isnan(at).any():
        raise ValueError("the truth lacks reports that were open at the moment")
    at = at.astype(int)
    out: dict[str, Any] = {"open_reports": len(per), "hours": live.hours}
    for clock, limit, reached in (
        ("6h", SLA_COORDINATION_H, coordinated),
        ("7d", SLA_RESOLUTION_H, closed),
    ):
        happened = breaches(received[at], reached[at], limit, start, end).astype(float)
        p_twin = per[f"p_breach_{clock}"].to_numpy(float)
        # naive: the share of deadlines missed over the window before the moment
        before = breaches(received, reached, limit, start - live.hours, start)
        due_before = (received + limit > start - live.hours) & (received + limit <= start)
        rate = before.sum() / due_before.sum() if due_before.any() else 0.0
        due = (received[at] + limit > start) & (received[at] + limit <= end)
        p_naive = np.where(due, rate, 0.0)
        out[f"breaches_{clock}"] = {
            "happened": int(happened.sum()),
            "expected_twin": float(p_twin.sum()),
            "expected_naive": float(p_naive.sum()),
            "brier_twin": float(np.mean((p_twin - happened) ** 2)) if len(per) else float("nan"),
            "brier_naive": float(np.mean((p_naive - happened) ** 2)) if len(per) else float("nan"),
        }
    hours = np.arange(len(forecast["backlog"]))
    real = backlog_at(received, closed, start + hours)
    twin = forecast["backlog"]["backlog_mean"].to_numpy(float)
    past = backlog_at(received, closed, np.array([start - live.hours, start]))
    naive = np.maximum(0.0, real[0] + (past[1] - past[0]) / live.hours * hours)
    out["backlog"] = {
        "real": real.tolist(),
        "mae_twin": float(np.mean(np.abs(twin - real))),
        "mae_naive": float(np.mean(np.abs(naive - real))),
    }
    return out
