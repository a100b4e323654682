"""What people read: a run's files and plots, and the tables, plots and HTML report of each study
(replications, comparison, sweep, validation).

The public names are re-exported lazily (PEP 562): `twin run` writes a run's files without
importing the studies' statistics (scipy.stats and the experiment machinery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.lazy import lazy_exports

if TYPE_CHECKING:
    from twin.reports.run_files import format_summary, write_run
    from twin.reports.studies import compare, replicate, run_sweep

_HOME = {
    "format_summary": "twin.reports.run_files",
    "write_run": "twin.reports.run_files",
    "compare": "twin.reports.studies",
    "replicate": "twin.reports.studies",
    "run_sweep": "twin.reports.studies",
}


__getattr__ = lazy_exports(__name__, _HOME)


__all__ = ["compare", "format_summary", "replicate", "run_sweep", "write_run"]
