"""What a run amounts to: Locust's CSV files read (`locust_stats`, `history`), the plot
(`plot_run`), the verdict against the profile's thresholds and the audit (`verdict`), what the
reports sent were (`report_mix`), and ``summary.json`` with its lines for the terminal
(`build_summary`, `write_outputs`, `format_summary`).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from loadtest.locust_run import Kill, RunRecord
from loadtest.profiles import Profile
from twin.errors import TwinError

OUTAGE_ERROR = "connection error"  # failures of requests that got no HTTP answer


def _number(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def locust_stats(prefix: Path) -> dict[str, Any]:
    """Requests, rates, percentiles and failures from Locust's ``<prefix>_stats.csv`` and
    ``<prefix>_failures.csv``.

    Returns
    -------
    stats
        ``requests, failures, rps, p50_ms, p95_ms, p99_ms`` over all endpoints, ``endpoints``
        (the same per ``METHOD name``), and ``errors`` (failure messages with their counts;
        ``outage_failures`` counts those of requests that got no HTTP answer).
    """
    path = Path(f"{prefix}_stats.csv")
    if not path.is_file():
        raise TwinError(f"Locust wrote no statistics ({path.name} is missing): see locust.log")
    endpoints: dict[str, dict[str, Any]] = {}
    total: dict[str, Any] = {}
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            entry = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": round(_number(row["Requests/s"]) or 0.0, 2),
                "p50_ms": _number(row["50%"]),
                "p95_ms": _number(row["95%"]),
                "p99_ms": _number(row["99%"]),
                "max_ms": _number(row["Max Response Time"]),
            }
            if row["Name"] == "Aggregated":
                total = entry
            else:
                endpoints[f"{row['Type']} {row['Name']}"] = entry
    errors: list[dict[str, Any]] = []
    failures_path = Path(f"{prefix}_failures.csv")
    if failures_path.is_file():
        with failures_path.open(encoding="utf-8") as f:
            errors = [
                {
                    "endpoint": f"{row['Method']} {row['Name']}",
                    "error": row["Error"][:300],
                    "count": int(row["Occurrences"]),
                }
                for row in csv.DictReader(f)
            ]
    errors.sort(key=lambda e: -int(e["count"]))
    outage = sum(int(e["count"]) for e in errors if OUTAGE_ERROR in str(e["error"]))
    return {**total, "outage_failures": outage, "endpoints": endpoints, "errors": errors[:20]}


def history(prefix: Path) -> list[dict[str, float | None]]:
    """The aggregated rows of ``<prefix>_stats_history.csv``: one per second of the run."""
    path = Path(f"{prefix}_stats_history.csv")
    if not path.is_file():
        return []
    out = []
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["Name"] != "Aggregated":
                continue
            out.append(
                {
                    "t": _number(row["Timestamp"]),
                    "users": _number(row["User Count"]),
                    "rps": _number(row["Requests/s"]),
                    "fps": _number(row["Failures/s"]),
                    "p50": _number(row["50%"]),
                    "p95": _number(row["95%"]),
                    "p99": _number(row["99%"]),
                    "total": _number(row["Total Request Count"]),
                    "total_failures": _number(row["Total Failure Count"]),
                }
            )
    return out


def plot_run(
    rows: list[dict[str, float | None]],
    out: Path,
    *,
    title: str,
    started: float,
    kills: Sequence[Kill] = (),
    surge: tuple[float, float] | None = None,
    breaking_s: float | None = None,
    day_s: float | None = None,
) -> Path:
    """Requests/s, latency percentiles and users over time, one panel each, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(name: str) -> list[float]:
        return [math.nan if r[name] is None else float(r[name] or 0.0) for r in rows]

    def per_second(name: str) -> list[float]:
        """Rates from Locust's cumulative counts (its own Requests/s is a moving average)."""
        values = series(name)
        rates = [math.nan]
        for i in range(1, len(values)):
            dt = t[i] - t[i - 1]
            rates.append((values[i] - values[i - 1]) / dt if dt > 0 else math.nan)
        return rates

    t = [float(r["t"] or started) - started for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True, constrained_layout=True)
    ax_rps, ax_lat, ax_users = axes
    requests, failures = per_second("total"), per_second("total_failures")
    answered = [r - f for r, f in zip(requests, failures, strict=True)]
    ax_rps.plot(t, requests, label="requests/s", color="tab:blue")
    ax_rps.plot(t, answered, label="successful/s", color="tab:green", linewidth=0.8)
    ax_rps.plot(t, failures, label="failures/s", color="tab:red")
    ax_rps.set_ylabel("per second")
    for name, color in (("p50", "tab:green"), ("p95", "tab:orange"), ("p99", "tab:red")):
        ax_lat.plot(t, series(name), label=name, color=color)
    ax_lat.set_ylabel("response time (ms),\nLocust's 10 s window")
    if any(v > 0 for v in series("p99") if not math.isnan(v)):
        ax_lat.set_yscale("log")
    ax_users.plot(t, series("users"), color="tab:purple", label="users")
    ax_users.set_ylabel("users")
    ax_users.set_xlabel("seconds since the start of the run")
    for ax in axes:
        for i, kill in enumerate(kills):
            ax.axvspan(
                kill.at_s, kill.at_s + kill.down_s, color="red", alpha=0.15,
                label="API killed (SIGKILL) until restarted" if i == 0 else None,
            )  # fmt: skip
        if surge:
            ax.axvspan(*surge, color="tab:cyan", alpha=0.12, label="flood surge")
        if breaking_s is not None:
            ax.axvline(breaking_s, color="black", linestyle="--", label="breaking step starts")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    ax_rps.set_title(title)
    if day_s:  # typical-day: the simulated hour on top
        top = ax_rps.secondary_xaxis(
            "top", functions=(lambda x: x / day_s * 24, lambda h: h * day_s / 24)
        )
        top.set_xlabel("simulated hour of the day")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def verdict(
    profile: Profile, stats: dict[str, Any], audit_result: dict[str, Any] | None, *, kills: int
) -> list[str]:
    """Why the run failed (empty: it passed): the profile's thresholds and the audit."""
    reasons = []
    if audit_result is not None:
        kinds = ("lost", "duplicates", "unexpected", "wrong_kelurahan", "altered")
        reasons += [f"audit: {k} = {audit_result[k]}" for k in kinds if audit_result[k]]
        if not audit_result["acknowledged"]:
            reasons.append("audit: no report was acknowledged")
    requests = int(stats.get("requests") or 0)
    if requests == 0:
        reasons.append("no request was made")
        return reasons
    if profile.name == "ramp":  # its thresholds define the breaking point, not a failure
        return reasons
    failures = int(stats.get("failures") or 0) - (int(stats["outage_failures"]) if kills else 0)
    ratio = failures / requests
    if ratio > profile.max_failure_ratio:
        reasons.append(
            f"failure ratio {ratio:.2%} > {profile.max_failure_ratio:.0%}"
            + (" (connection errors during kills excluded)" if kills else "")
        )
    p99 = stats.get("p99_ms")
    if p99 is not None and p99 > profile.max_p99_ms:
        reasons.append(f"p99 {p99:.0f} ms > {profile.max_p99_ms:.0f} ms")
    return reasons


def report_mix(
    ledger: Iterable[dict[str, Any]], payloads: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """What the reports sent were: per route, per category, and how many were flood extras."""
    numbers = [
        int(r["p"])
        for r in ledger
        if r.get("e") == "sent" and 0 <= int(r.get("p", -1)) < len(payloads)
    ]
    sent = [payloads[n] for n in numbers]
    flood = [p for p in sent if p["flood"]]
    return {
        "reports": len(sent),
        "by_route": dict(Counter(p["route"] for p in sent).most_common()),
        "by_category": dict(Counter(p["category"] for p in sent).most_common()),
        "flood_extras": len(flood),
        "flood_extra_kelurahan_top": dict(Counter(p["kelurahan"] for p in flood).most_common(5)),
    }


def build_summary(
    profile: Profile, stats: dict[str, Any], audit_result: dict[str, Any], record: RunRecord,
    ramp: dict[str, Any] | None, run: dict[str, Any], *, reasons: list[str],
    surge: float | None,
) -> dict[str, Any]:  # fmt: skip
    """The run's settings (`run`), Locust's figures, the audit, the kills and the verdict."""
    requests = int(stats.get("requests") or 0)
    failures = int(stats.get("failures") or 0)
    summary: dict[str, Any] = {
        **run,
        "started_at": datetime.fromtimestamp(record.started).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "requests": requests,
        "rps": stats.get("rps"),
        "p50_ms": stats.get("p50_ms"),
        "p95_ms": stats.get("p95_ms"),
        "p99_ms": stats.get("p99_ms"),
        "failures": failures,
        "failure_ratio": round(failures / requests, 5) if requests else None,
        "outage_failures": stats.get("outage_failures", 0),
        "endpoints": stats.get("endpoints", {}),
        "errors": stats.get("errors", []),
        "acknowledged": audit_result["acknowledged"],
        "stored": audit_result["stored"],
        "lost": audit_result["lost"],
        "duplicates": audit_result["duplicates"],
        "audit": audit_result,
        "kill_log": [asdict(k) for k in record.kills],
        "thresholds": {
            "max_failure_ratio": profile.max_failure_ratio,
            "max_p99_ms": profile.max_p99_ms,
        },
        "passed": not reasons,
        "reasons": reasons,
    }
    if surge is not None:
        summary["surge_multiplier"] = surge
    if profile.name == "ramp":
        summary["breaking_point"] = (ramp or {}).get("breaking_point")
        summary["ramp"] = ramp
    return summary


def write_outputs(
    run_dir: Path, summary: dict[str, Any], record: RunRecord, duration: float, profile: str,
    ramp: dict[str, Any] | None,
) -> None:  # fmt: skip
    """``summary.json`` and ``loadtest.png`` into the run folder."""
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    breaking_s = None
    if ramp and ramp.get("breaking_point"):
        broken = [s for s in ramp["steps"] if s.get("broken")]
        if broken:
            breaking_s = float(broken[0]["step"]) * float(ramp["step_s"])
    plot_run(
        history(run_dir / "locust"),
        run_dir / "loadtest.png",
        title=f"twin loadtest --profile {profile}: {summary['rps'] or 0:.0f} requests/s, "
        f"p99 {summary['p99_ms'] or 0:.0f} ms, lost {summary['lost']}, "
        f"duplicates {summary['duplicates']}",
        started=record.started,
        kills=record.kills,
        surge=(duration / 3, 2 * duration / 3) if profile == "flood-surge" else None,
        breaking_s=breaking_s,
        day_s=duration if profile == "typical-day" else None,
    )


def format_summary(summary: dict[str, Any], run_dir: Path) -> str:
    """A few lines for the terminal."""
    lines = [
        f"profile {summary['profile']}: {summary['requests']:,} requests, "
        f"{summary['rps'] or 0:.1f} requests/s, p50 {summary['p50_ms'] or 0:.0f} ms, "
        f"p95 {summary['p95_ms'] or 0:.0f} ms, p99 {summary['p99_ms'] or 0:.0f} ms, "
        f"failures {summary['failures']} ({summary['outage_failures']} without an HTTP answer: refused, reset, timed out)",
        f"audit: acknowledged {summary['acknowledged']:,}, stored {summary['stored']:,}, "
        f"lost {summary['lost']}, duplicates {summary['duplicates']}, "
        f"unexpected {summary['audit']['unexpected']}, "
        f"wrong kelurahan {summary['audit']['wrong_kelurahan']}; "
        f"retried {summary['audit']['retried']}, replayed {summary['audit']['replayed']}",
    ]
    if summary["kill_log"]:
        kills = ", ".join(
            f"{k['at_s']:.1f} s (down {k['down_s']:.1f} s)" for k in summary["kill_log"]
        )
        lines.append(f"API killed with SIGKILL at {kills}")
    if summary["profile"] == "ramp":
        bp = summary.get("breaking_point")
        if bp:
            good = bp.get("last_good") or {}
            lines.append(
                f"breaking point: {bp['users']} users ({bp['why']}); last good step "
                f"{good.get('users', 0)} users at {good.get('rps', 0):.0f} requests/s, "
                f"p99 {good.get('p99_ms', 0):.0f} ms"
            )
        else:
            lines.append("breaking point: not reached")
    lines.append("PASSED" if summary["passed"] else "FAILED: " + "; ".join(summary["reasons"]))
    lines.append(f"wrote {run_dir}/")
    return "\n".join(lines)
