"""Experiments on the model: replications (local pool or Dask), statistics across them, scenario
variants and staffing sweeps, and validation against published outcomes."""

from twin.experiments.replications import ReplicationResult, Runner, Task, run_tasks
from twin.experiments.variants import apply_point, replace_field, with_days

__all__ = [
    "ReplicationResult",
    "Runner",
    "Task",
    "apply_point",
    "replace_field",
    "run_tasks",
    "with_days",
]
