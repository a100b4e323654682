"""Named random streams: one independent numpy Generator per activity.

Replication r of every scenario draws each activity from the same stream, so two scenarios that
differ only in staffing or dispatch see the very same reports (common random numbers), and adding
a stream never shifts the others. Stream names are a public contract (see `docs/model.md`).
"""

from __future__ import annotations

import zlib

import numpy as np


class RandomStreams:
    """Independent, named numpy Generators for one replication.

    Attributes
    ----------
    base_seed
        The scenario's seed.
    replication
        Replication number (0 for a single run).
    """

    def __init__(self, base_seed: int, replication: int = 0) -> None:
        self.base_seed = base_seed
        self.replication = replication
        self._streams: dict[str, np.random.Generator] = {}

    def get(self, name: str) -> np.random.Generator:
        """The generator of stream `name`, created on first use and never restarted."""
        if name not in self._streams:
            key = zlib.crc32(name.encode("utf-8"))
            seq = np.random.SeedSequence(self.base_seed, spawn_key=(self.replication, key))
            self._streams[name] = np.random.default_rng(seq)
        return self._streams[name]
