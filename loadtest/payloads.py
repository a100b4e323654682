"""Request bodies drawn from the twin's own demand model, precomputed once per run.

`build_pool` asks `twin.model.demand.generate_reports` for a few days of reports of the scenario, with
every day a flood day, so the pool holds both the normal mix and the flood extras (flagged
``flood``, placed in flood-prone kelurahan, mostly category ``flood``). Each payload keeps the
category, the point (rounded to 1e-6 degrees, about 0.1 m), the channel and the kelurahan that
point lies in, as the twin's `KelurahanIndex` says: the kelurahan the server must store it under.

Locust processes read the pool (`read_pool`) and draw from it with `PayloadPool.sample` and a
seeded ``random.Random(seed + user_index)``, since Locust's own waits are unseeded.

Channels map to the API a report comes through (`ROUTES`): JAKI is the city's app (native API),
Qlue a third-party app speaking Open311, and the rest (Twitter, email, Facebook, SMS, walk-in)
are typed in by CRM operators through the native API with their channel named.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtest.profiles import SURGE_MULTIPLIER

if TYPE_CHECKING:
    from twin.city.assembly import City
    from twin.model.scenario import Scenario

APP, OPERATOR, OPEN311 = "app", "operator", "open311"
ROUTES: dict[str, str] = {"jaki": APP, "qlue": OPEN311}  # every other channel: OPERATOR
POOL_FILE = "payloads.jsonl"
META_FILE = "payloads.meta.json"


def route_of(channel: str) -> str:
    """The API route of a channel: ``app``, ``operator`` or ``open311``."""
    return ROUTES.get(channel, OPERATOR)


def route_shares(channel_shares: dict[str, float]) -> dict[str, float]:
    """Share of reports per route, from the scenario's channel shares."""
    total = sum(channel_shares.values()) or 1.0
    out = {APP: 0.0, OPERATOR: 0.0, OPEN311: 0.0}
    for channel, share in channel_shares.items():
        out[route_of(channel)] += share / total
    return out


def scenario_route_shares(scenario: Scenario) -> dict[str, float]:
    """`route_shares` of a scenario's channels."""
    return route_shares({c: ch.share for c, ch in scenario.demand.channels.items()})


def surge_multiplier(scenario: Scenario) -> float:
    """The scenario's flood-day multiplier, or the default when it has none above 1."""
    m = scenario.demand.flood.multiplier
    return m if m > 1 else SURGE_MULTIPLIER


def build_pool(
    city: City, scenario: Scenario, *, seed: int, size: int = 20_000
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Draw at least `size` report payloads from the twin's demand model.

    Parameters
    ----------
    city
        The city model (`twin.city.assembly.load_city`).
    scenario
        The scenario whose demand is sampled (categories, channels, places, flood surge).
    seed
        Seed of the twin's random streams.
    size
        Fewest payloads wanted; whole days are drawn, so a few more come.

    Returns
    -------
    payloads, meta
        The payloads (dicts: ``category, lat, lon, channel, route, kelurahan, flood,
        description``) and what the load test needs to know about them (seed, route shares,
        hourly profile, flood multiplier, busiest kelurahan).
    """
    from twin.entities import CATEGORIES
    from twin.model.demand import generate_reports
    from twin.model.streams import RandomStreams

    d = scenario.demand
    multiplier = surge_multiplier(scenario)
    days = max(1, math.ceil(size / (d.reports_per_day * multiplier)))
    run = dataclasses.replace(scenario.run, days=days, seed=seed)
    flood = dataclasses.replace(d.flood, days=tuple(range(days)), multiplier=multiplier)
    surge = dataclasses.replace(scenario, run=run, demand=dataclasses.replace(d, flood=flood))
    reports = generate_reports(city, surge, RandomStreams(seed))
    frame = reports.frame
    lon = frame["lon"].round(6).to_numpy()
    lat = frame["lat"].round(6).to_numpy()
    where = city.kelurahan.locate_many(lon, lat)
    codes = city.kelurahan.codes
    names = city.table["kelurahan"].astype(str).to_numpy()
    category = frame["category"].to_numpy()
    channel = frame["channel"].to_numpy()
    flooded = frame["flood"].to_numpy()
    payloads: list[dict[str, Any]] = []
    for i in range(len(frame)):
        row = int(where[i])
        if row < 0:  # off the coast or across the border: the server would refuse it
            continue
        cat = reports.categories[int(category[i])]
        chan = reports.channels[int(channel[i])]
        payloads.append(
            {
                "category": cat,
                "lat": float(lat[i]),
                "lon": float(lon[i]),
                "channel": chan,
                "route": route_of(chan),
                "kelurahan": str(codes[row]),
                "flood": bool(flooded[i]),
                "description": f"{CATEGORIES.get(cat, (cat,))[0]} di {names[row]}",
            }
        )
    normal = Counter(p["kelurahan"] for p in payloads if not p["flood"])
    surged = Counter(p["kelurahan"] for p in payloads if p["flood"])
    meta = {
        "seed": seed,
        "scenario": scenario.name,
        "size": len(payloads),
        "flood_payloads": sum(surged.values()),
        "route_shares": scenario_route_shares(scenario),
        "hourly_profile": list(d.hourly_profile),
        "flood_multiplier": multiplier,
        "busiest_kelurahan": [code for code, _ in normal.most_common(20)],
        "busiest_flood_kelurahan": [code for code, _ in surged.most_common(20)],
    }
    return payloads, meta


def write_pool(folder: Path, payloads: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """Write the pool as JSON lines (line n is payload n) and its meta file; return the pool."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / POOL_FILE
    with path.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(p, separators=(",", ":")) + "\n" for p in payloads)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return path


def read_meta(folder: Path) -> dict[str, Any]:
    """The meta file of a pool."""
    return dict(json.loads((folder / META_FILE).read_text(encoding="utf-8")))


class PayloadPool:
    """The payloads of a run, indexed by route and flood flag for sampling.

    Parameters
    ----------
    payloads
        As written by `write_pool`, in order (a payload's number is its position).
    """

    def __init__(self, payloads: list[dict[str, Any]]) -> None:
        self.payloads = payloads
        self._by: dict[tuple[str, bool], list[int]] = {}
        for i, p in enumerate(payloads):
            self._by.setdefault((p["route"], p["flood"]), []).append(i)

    def __len__(self) -> int:
        return len(self.payloads)

    def sample(self, rng: random.Random, route: str, *, flood: bool = False) -> int:
        """The number of a payload of `route` (a flood extra when `flood` and there is one)."""
        numbers = self._by.get((route, flood)) or self._by.get((route, False))
        if not numbers:  # a scenario without this route: any payload will do
            numbers = self._by.get((route, True)) or list(range(len(self.payloads)))
        return numbers[rng.randrange(len(numbers))]

    def kelurahan(self, rng: random.Random) -> str:
        """A kelurahan code, as often as reports come from it."""
        return str(self.payloads[rng.randrange(len(self.payloads))]["kelurahan"])


def read_pool(folder: Path) -> PayloadPool:
    """The pool written by `write_pool` into `folder`."""
    with (folder / POOL_FILE).open(encoding="utf-8") as f:
        return PayloadPool([json.loads(line) for line in f if line.strip()])


def user_rng(seed: int, worker_index: int, user_index: int) -> random.Random:
    """The seeded generator of one simulated user: ``random.Random(seed + user index)``.

    The user index counts users over all Locust processes (worker n's users are numbered from
    n x 1,000,000), so no two users of a distributed run share a sequence.
    """
    return random.Random(seed + worker_index * 1_000_000 + user_index)
