"""What every user of one Locust process shares (`STATE`): the run folder's payload pool and
credentials, the process's ledger, and the ids of acknowledged reports for the trackers.

Read from the environment variables the locustfile describes, once per process (`RunState.load`).
"""

import io
import itertools
import json
import os
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

from loadtest import payloads, profiles, shapes


class RunState:
    """What every user of this Locust process shares: pool, credentials, ledger, acks."""

    def __init__(self) -> None:
        self.loaded = False
        self.pool: payloads.PayloadPool | None = None
        self.credentials: dict[str, Any] = {}
        self.tag = os.environ.get("LOADTEST_RUN_TAG", "lt")
        self.seed = int(os.environ.get("LOADTEST_SEED") or 0)
        self.idempotency = os.environ.get("LOADTEST_NO_IDEMPOTENCY", "") not in ("1", "true")
        self.profile = os.environ.get("LOADTEST_PROFILE", "")
        self.duration = float(os.environ.get("LOADTEST_DURATION") or 0)
        self.multiplier = float(os.environ.get("LOADTEST_SURGE_MULTIPLIER") or 0)
        self.acked: deque[str] = deque(maxlen=5000)
        self.users = itertools.count()
        self.pacers = itertools.count()
        self.worker_index = 0
        self.started: float | None = None
        self._ledger: io.TextIOWrapper | None = None

    def load(self) -> None:
        """Read the run folder (once per process)."""
        if self.loaded:
            return
        folder = os.environ.get("LOADTEST_RUN_DIR")
        if not folder or not (Path(folder) / payloads.POOL_FILE).is_file():
            msg = "LOADTEST_RUN_DIR must name a run folder prepared by `twin loadtest`"
            raise RuntimeError(msg)
        run_dir = Path(folder)
        self.pool = payloads.read_pool(run_dir)
        self.credentials = json.loads((run_dir / "credentials.json").read_text(encoding="utf-8"))
        name = f"ledger-{socket.gethostname()}-{os.getpid()}.jsonl"
        self._ledger = (run_dir / name).open("a", encoding="utf-8", buffering=1)
        if not self.multiplier:
            self.multiplier = shapes.surge_multiplier()
        self.loaded = True

    def log(self, record: dict[str, Any]) -> None:
        """Append one ledger record (one line, written through at once)."""
        assert self._ledger is not None
        self._ledger.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        """Flush and close the ledger."""
        if self._ledger is not None:
            self._ledger.flush()
            self._ledger.close()
            self._ledger = None

    def surge_share(self) -> float:
        """Share of flood extras among reports right now (0 outside a surge)."""
        if self.profile != "flood-surge" or self.started is None or not self.duration:
            return 0.0
        if not profiles.in_surge(time.monotonic() - self.started, self.duration):
            return 0.0
        return profiles.flood_share(self.multiplier)


STATE = RunState()
