"""Write a run's results to a folder: summary.json, reports.parquet, kelurahan.csv, plots and
report.html."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from twin.model.decomposition import format_decomposition
from twin.reports import run_plots as plots
from twin.reports.provenance import file_sha256
from twin.reports.run_report import write_run_report

if TYPE_CHECKING:
    from pathlib import Path

    from twin.city.assembly import City
    from twin.model.runner import RunResult


def _clean(value: Any) -> Any:
    """JSON-safe: NaN becomes null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_run(
    result: RunResult,
    city: City,
    out: Path,
    *,
    provenance: dict[str, Any] | None = None,
    figures: plots.FigureWorker | None = None,
) -> list[Path]:
    """Write every output of one run into `out` and return the paths.

    The figures are drawn by a second process while the records, the summary and the report are
    written (`figures`, a `twin.reports.run_plots.FigureWorker` started early so that it is warm;
    one is started here when None); the report embeds them last.

    `provenance` (see `twin.reports.provenance.collect`) goes into summary.json, with the SHA-256
    of the reports.parquet written, so a replay can show it gets the same records.
    """
    out.mkdir(parents=True, exist_ok=True)
    mainland = city.table[~city.is_seribu]
    with plots.FigureWorker(mainland) if figures is None else figures as worker:
        worker.draw(result, out)  # drawn meanwhile, awaited last
        written = _write_files(result, out, provenance)
        report = write_run_report(result.summary, result.kelurahan, mainland, worker, out)
        return [*written, *worker, report]


def _write_files(result: RunResult, out: Path, provenance: dict[str, Any] | None) -> list[Path]:
    """summary.json, reports.parquet and kelurahan.csv."""
    written = [out / "summary.json", out / "reports.parquet", out / "kelurahan.csv"]
    result.reports.to_parquet(written[1], index=False, compression="zstd")
    summary = dict(result.summary)
    if provenance is not None:
        provenance["outputs"] = {"reports.parquet": file_sha256(written[1])}
        summary["provenance"] = provenance
    written[0].write_text(json.dumps(_clean(summary), indent=2) + "\n")
    result.kelurahan.to_csv(written[2], float_format="%.4f")
    return written


def format_summary(summary: dict[str, Any]) -> str:
    """The summary table printed after a run."""

    def hours(key: str) -> str:  # a percentile the curve never reaches is "not reached"
        value = summary[key]
        return "not reached" if value != value else f"{value:.1f}"

    horizon = f"{summary['mean_horizon_h']:.0f} h"
    rows = [
        ("reports (the cohort)", f"{summary['reports']:,}"),
        ("resolved", f"{summary['resolved']:,} ({summary['resolved_share']:.1%})"),
        (
            "still open (censored)",
            f"{summary['open_at_end']:,} ({summary['censored_resolution_share']:.1%})",
        ),
        ("never picked up", f"{summary['outcomes'].get('unanswered', 0):,}"),
        (f"mean coordination (to {horizon})", f"{summary['mean_coordination_h']:.2f} h"),
        ("coordinated within 6 h", f"{summary['share_coordinated_within_6h']:.1%}"),
        (f"mean resolution (to {horizon})", f"{summary['mean_resolution_h']:.2f} h"),
        ("mean of the resolved only", f"{summary['mean_resolution_of_resolved_h']:.2f} h"),
        (
            "p50 / p90 / p99 resolution",
            f"{hours('p50_resolution_h')} / {hours('p90_resolution_h')} / {hours('p99_resolution_h')} h",
        ),
        ("resolved within 7 days", f"{summary['share_resolved_within_7d']:.1%}"),
        ("crews / utilisation", f"{summary['crews']:,} / {summary['crew_utilisation']:.1%}"),
        ("travel", f"{summary['travel_km']:,.0f} km"),
    ]
    lines = [
        f"{summary['scenario']} (seed {summary['seed']}, {summary['days']} days measured after a "
        f"{summary['warm_up_days']}-day warm-up, followed up {summary['follow_up_days']} days; "
        f"dispatch {summary['dispatch']}, pooling {summary['pooling']})",
        "  times: Kaplan-Meier, reports still open at the follow-up's end count (censored)",
    ]
    if not summary["reports"]:  # nothing arrived: no time, share or target to show
        lines.append("  no report was received in the measured period: no KPI, no target judged")
        return "\n".join(lines)
    lines += [f"  {k:<34} {v}" for k, v in rows]
    never = summary.get("never_picked_up", {})
    if never:
        total = never["abandoned"] + never["residual"]
        lines.append(
            f"  {'never picked up: abandoned':<34} {never['abandoned']:,}; residual lever {never['residual']:,}"
            + (f" ({never['residual'] / total:.0%} of the effect)" if total else "")
        )
    lines.append(
        f"  {'desk staff / utilisation':<34} {summary['desk_staff']:,} / {summary['desk_utilisation']:.1%}"
    )
    for name, t in summary["targets"].items():
        lines.append(
            f"  target {name:<21} {'MET' if t['met'] else 'missed'} ({t['kpi']} {t['value']:.2f}, target at most {t['target_max']:g})"
        )
    if "decomposition" in summary:
        lines.append(format_decomposition(summary["decomposition"]))
    return "\n".join(lines)
