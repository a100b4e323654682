"""What people read: a run's files and plots, and the tables, plots and HTML report of each study
(replications, comparison, sweep, validation)."""

from twin.reports.run_files import format_summary, write_run
from twin.reports.studies import compare, replicate, run_sweep

__all__ = ["compare", "format_summary", "replicate", "run_sweep", "write_run"]
