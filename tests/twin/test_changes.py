"""Dated changes inside one run (`twin.model.changes`): each changeable field applied in the model
on a synthetic city, and folded into a warm start. The scenario checks are in `test_scenario.py`,
the face validity on the real city in `test_face_validity_changes.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from twin.model.dispatch import POLICIES, FifoPolicy
from twin.model.process import CityTwin
from twin.model.runner import run_scenario
from twin.model.scenario import Scenario, scenario_from_dict
from twin.model.streams import RandomStreams
from twin.model.warm_start import on_calendar

START = "2023-03-06"


def scenario(*changes: dict[str, Any], **over: Any) -> Scenario:
    """The synthetic city for a week from Monday 2023-03-06, parking all handed to dishub."""
    base: dict[str, Any] = {
        "run": {"days": 7, "seed": 4, "start_date": START, "warm_up_days": 0,
                "follow_up_days": 0},
        "demand": {"reports_per_day": 150.0},
        "coordination": {"staff_per_kelurahan": 4, "closed_on_holidays": False},
        "routing": {"illegal_parking": {"dishub": 1.0}},
        "changes": list(changes),
    }  # fmt: skip
    for key, value in over.items():
        base[key] = {**base.get(key, {}), **value}
    return scenario_from_dict(base, name="changes")


def built(city: Any, sc: Scenario) -> CityTwin:
    from twin.model.demand import generate_reports

    return CityTwin(city, sc, generate_reports(city, sc, RandomStreams(sc.run.seed, 0)))


@dataclass(eq=False)
class Waiting:
    index: int
    rank: int
    ready_min: float


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_policy_hands_over_its_waiting_jobs_in_arrival_order(name: str) -> None:
    policy = POLICIES[name](lambda crew, job: 0.0)  # type: ignore[arg-type,return-value]
    ranks = [3, 0, 2, 0, 1, 4]  # the priority queue holds them in another order
    jobs = [Waiting(index=10 - i, rank=r, ready_min=float(i // 2)) for i, r in enumerate(ranks)]
    for job in jobs:
        policy.push(job)  # type: ignore[arg-type]
    drained = policy.drain()
    assert len(policy) == 0
    if name == "priority":  # ties in arrival minute: report order
        assert [j.index for j in drained] == [9, 10, 7, 8, 5, 6]
    else:  # the queue's own order, which is the arrival order
        assert drained == jobs


def test_a_dispatch_change_moves_the_waiting_jobs_to_the_new_policy(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    sc = scenario(
        {"date": "2023-03-09", "field": "crews.dispatch", "value": "fifo"},
        crews={"dispatch": "priority", "pooling": "kecamatan", "per_kelurahan": 10},
        demand={"reports_per_day": 300.0},  # a backlog: jobs wait at the switch
    )
    twin = built(synthetic_city, sc)
    seen: list[tuple[float, list[list[int]], list[list[int]]]] = []
    change = twin.ppsu.change

    def spy(field: str, value: float | str) -> None:
        waiting = [sorted(p.policy.drain(), key=lambda j: (j.ready_min, j.index)) for p in twin.ppsu.pools]  # fmt: skip
        for pool, jobs in zip(twin.ppsu.pools, waiting, strict=True):
            for job in sorted(jobs, key=lambda j: (j.rank, j.index)):  # back as they were
                pool.policy.push(job)
        change(field, value)
        after = [[j.index for j in p.policy.drain()] for p in twin.ppsu.pools]
        for pool, jobs in zip(twin.ppsu.pools, waiting, strict=True):
            for job in jobs:
                pool.policy.push(job)
        seen.append((twin.env.now, [[j.index for j in w] for w in waiting], after))

    twin.ppsu.change = spy  # type: ignore[method-assign]
    twin.run(until_min=sc.run.days * 1440.0)
    assert len(seen) == 1
    at, before, after = seen[0]
    assert at == 3 * 1440.0  # 00:00 of 2023-03-09
    assert sum(map(len, before)) > 20  # jobs were waiting, under priority
    assert after == before  # now in the fifo queue, in their arrival order
    assert all(isinstance(p.policy, FifoPolicy) for p in twin.ppsu.pools)
    # none lost in the move: every PPSU job ready in time reached a crew or still waits
    t, end = twin.timeline, sc.run.days * 1440.0
    ready = (twin.outcomes() == 0) & (t.coordinated_min < end)
    never = set(np.flatnonzero(ready & np.isnan(t.assigned_min)).tolist())
    still = {j.index for p in twin.ppsu.pools for j in p.policy.drain()}
    assert never
    assert never <= still


def test_an_agency_teams_change_retires_and_adds_teams_on_its_dates(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    cut, back = 2 * 1440.0, 4 * 1440.0
    sc = scenario(
        {"date": "2023-03-08", "field": "agencies.dishub.teams_per_kota", "value": 1},
        {"date": "2023-03-10", "field": "agencies.dishub.teams_per_kota", "value": 3},
        agencies={"dishub": {"teams_per_kota": 4}},
        run={"follow_up_days": 0},
    )
    twin = built(synthetic_city, sc)
    teams = twin.agencies.teams[twin.agencies.names.index("dishub")]
    starts: list[tuple[int, float]] = []
    start_job = teams._start_job

    def spy(crew: Any, job: Any) -> None:
        starts.append((crew.crew_id, twin.env.now))
        start_job(crew, job)

    teams._start_job = spy  # type: ignore[method-assign]
    twin.run(until_min=sc.run.days * 1440.0)
    (pool,) = {id(p): p for p in teams.pool_of_kelurahan}.values()  # one kota
    retired = {c.crew_id for c in teams.crews if c.retired}
    assert len(retired) == 3
    assert sorted(c.crew_id for c in pool.crews) == [i for i in range(6) if i not in retired]
    assert len(teams.crews) == 6  # 4, then 1, then 2 new ones at the base
    # no retired team starts a job after the cut; the new teams work after their date
    assert not [s for s in starts if s[0] in retired and s[1] >= cut]
    assert {4, 5} <= {crew for crew, at in starts if at >= back}
    assert not [s for s in starts if s[0] in (4, 5) and s[1] < back]
    (kept,) = {0, 1, 2, 3} - retired
    assert {crew for crew, at in starts if cut <= at < back} == {kept}  # one team between
    # utilisation is over the teams in force each day
    share = twin.agencies.busy_share(0.0, sc.run.days * 1440.0)["dishub"]
    assert 0 < share <= 1


@pytest.mark.parametrize("desk_events", [False, True])
def test_a_handover_change_applies_to_reports_coordinated_from_its_date(
    synthetic_city, desk_events: bool
) -> None:  # type: ignore[no-untyped-def]
    fixed = {"dist": "fixed", "mean_min": 240.0, "sd_min": 0.0}
    sc = scenario(
        {"date": "2023-03-09", "field": "agencies.dishub.handover.mean_min", "value": 2880.0},
        agencies={"dishub": {"teams_per_kota": 8, "handover": fixed}},
        run={"follow_up_days": 4},
    )
    r = run_scenario(synthetic_city, sc, desk_events=desk_events).reports
    dishub = (r["agency"] == "dishub") & r["assigned_h"].notna()
    gap = (r["assigned_h"] - r["coordinated_h"])[dishub]
    after = r.loc[dishub, "coordinated_h"] >= 3 * 24.0
    assert after.sum() > 20
    assert (~after).sum() > 20
    assert (gap[after] >= 48.0 - 1e-9).all()  # 2880 minutes
    assert (gap[~after] >= 4.0 - 1e-9).all()
    assert (gap[~after] < 48.0).all()
    # received before the date but coordinated after it: the new hand-over (by coordination)
    late = after & (r.loc[dishub, "received_h"] < 3 * 24.0)
    assert late.sum() > 0
    assert (gap[late] >= 48.0 - 1e-9).all()


def test_the_desks_agree_across_a_handover_change(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    sc = scenario(
        {"date": "2023-03-09", "field": "agencies.dishub.handover.mean_min", "value": 720.0},
        {"date": "2023-03-10", "field": "agencies.dishub.teams_per_kota", "value": 1},
    )
    pd.testing.assert_frame_equal(
        run_scenario(synthetic_city, sc).reports,
        run_scenario(synthetic_city, sc, desk_events=True).reports,
    )


def test_a_warm_start_folds_every_kind_of_change_made_before_it() -> None:
    sc = scenario(
        {"date": "2023-03-07", "field": "crews.dispatch", "value": "fifo"},
        {"date": "2023-03-08", "field": "agencies.dishub.teams_per_kota", "value": 5},
        {"date": "2023-03-09", "field": "agencies.sda.handover.mean_min", "value": 480.0},
        {"date": "2023-03-10", "field": "coordination.staff_per_kelurahan", "value": 1},
        {"date": "2023-03-12", "field": "crews.dispatch", "value": "nearest"},
        run={"days": 7},
    )
    warm = on_calendar(sc, "2023-03-09", 3)  # 9 to 11 March: in force from the 9th
    assert warm.crews.dispatch == "fifo"
    assert warm.agencies["dishub"].teams_per_kota == 5
    assert warm.agencies["sda"].handover.mean_min == 480.0
    assert warm.agencies["sda"].handover.sd_min == 480.0  # 240 x 2: the CV kept
    assert warm.coordination.staff_per_kelurahan == 4  # its change is later, inside the run
    assert [(c.date, c.field) for c in warm.changes] == [
        ("2023-03-10", "coordination.staff_per_kelurahan")
    ]
    assert sc.crews.dispatch == "nearest"  # the scenario itself is untouched
