"""The warm start: residual durations, and a run that starts from a state of the real system."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from twin.errors import ScenarioError
from twin.experiments.forecast import ForecastTask, LiveInput, run_forecast
from twin.model.demand import sample
from twin.model.parameters import Distribution
from twin.model.process import CityTwin
from twin.model.scenario import scenario_from_dict
from twin.model.streams import RandomStreams
from twin.model.warm_start import check_records, live_state, residual

AS_OF = pd.Timestamp("2024-03-05 10:30", tz="Asia/Jakarta").tz_convert("UTC")
STATUS_CYCLE = ("menunggu", "koordinasi", "disposisi", "disposisi", "proses")


@pytest.mark.parametrize("elapsed", [0.0, 30.0, 120.0, 300.0])
def test_lognormal_residual_is_the_conditional_law(elapsed: float) -> None:
    """X | X > e drawn by the survival inverse equals rejection sampling of fresh draws."""
    dist = Distribution("lognormal", 60.0, 60.0)
    rng = np.random.default_rng(1)
    fresh = sample(dist, rng, 2_000_000)
    kept = fresh[fresh > elapsed][:4000]
    drawn = residual(dist, np.full(4000, elapsed), 1.0 - rng.random(4000))
    assert (drawn >= elapsed).all()
    assert len(kept) == 4000
    assert stats.ks_2samp(kept, drawn).pvalue > 0.001
    if elapsed >= 120:  # a long wait so far means a long job: more left than a fresh job
        assert drawn.mean() - elapsed > fresh.mean()


def test_exponential_residual_is_memoryless_and_fixed_ends_now() -> None:
    rng = np.random.default_rng(2)
    e = np.full(20_000, 500.0)
    left = residual(Distribution("exponential", 60.0, 60.0), e, 1.0 - rng.random(20_000)) - e
    assert left.mean() == pytest.approx(60.0, rel=0.03)
    fixed = residual(Distribution("fixed", 60.0, 0.0), np.array([10.0, 90.0]), np.ones(2))
    assert fixed.tolist() == [60.0, 90.0]


def records_for(city, n: int = 50, hours_old: float = 30.0) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """`n` open reports in every status, on road nodes of the synthetic city."""
    codes = list(city.kelurahan.codes)
    rng = np.random.default_rng(0)
    nodes = np.flatnonzero(city.node_kelurahan >= 0)[:n]
    status = [STATUS_CYCLE[i % 5] for i in range(n)]
    received = AS_OF - pd.to_timedelta(rng.uniform(0.2, hours_old, n), unit="h")
    coordinated = [
        pd.NaT if s == "menunggu" else r + pd.Timedelta(minutes=10)
        for s, r in zip(status, received, strict=True)
    ]
    return pd.DataFrame(
        {
            "report_id": np.arange(n),
            "kelurahan_code": [codes[int(k)] for k in city.node_kelurahan[nodes]],
            "category": ["garbage", "roads"] * (n // 2),
            "status": status,
            "received_at": received,
            "coordinated_at": pd.to_datetime(pd.Series(coordinated), utc=True),
            "status_at": received + pd.Timedelta(minutes=20),
            "crew": [
                "PPSU 1" if s == "proses" or (s == "disposisi" and i % 2 == 0) else None
                for i, s in enumerate(status)
            ],
            "agency": [
                "Dinas Bina Marga" if s == "disposisi" and i % 2 else None
                for i, s in enumerate(status)
            ],
            "lon": city.network.node_x[nodes],
            "lat": city.network.node_y[nodes],
        }
    )


SCENARIO = {"run": {"days": 1, "seed": 3}, "demand": {"reports_per_day": 200.0}}


def test_a_warm_run_starts_at_the_moment_from_the_records(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    scenario = scenario_from_dict(SCENARIO, name="warm")
    records = records_for(synthetic_city)
    state = live_state(
        synthetic_city, scenario, records, as_of=AS_OF, hours=48, streams=RandomStreams(3, 0)
    )
    start = state.warm.start_min
    assert start == 10.5 * 60  # 10:30 in Jakarta on the run's clock (midnight = 0)
    assert state.scenario.run.start_date == "2024-03-05"
    f = state.reports.frame
    assert (f["received_min"].to_numpy()[: state.n_open] < start).all()
    assert (f["received_min"].to_numpy()[state.n_open :] >= start).all()
    twin = CityTwin(synthetic_city, state.scenario, state.reports, warm=state.warm)
    twin.run(until_min=state.until_min)
    t = twin.timeline
    past = state.warm.past_desk
    assert past.sum() == 40  # every status but menunggu is past the desk
    # nothing is picked up, assigned or closed before the moment; the past keeps its times
    assert (t.picked_min[~past][np.isfinite(t.picked_min[~past])] >= start).all()
    assert (t.assigned_min[np.isfinite(t.assigned_min)] >= start).all()
    assert (t.closed_min[np.isfinite(t.closed_min)] >= start).all()
    np.testing.assert_array_equal(t.coordinated_min[past], state.warm.coordinated_min[past])
    # the open records get served: most close within two days
    closed = np.isfinite(t.closed_min[: state.n_open])
    assert closed.mean() > 0.5
    # an agency's hand-over under way is not restarted: its job is ready no later than a fresh
    # hand-over would be, and never before the moment
    agency = (records["agency"].notna()).to_numpy()[state.record_rows]
    assert (state.warm.ready_min[: state.n_open][agency] >= start).all()


def test_warm_runs_are_reproducible_and_share_draws_across_scenarios(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    a = scenario_from_dict(SCENARIO, name="a")
    b = dataclasses.replace(
        a, coordination=dataclasses.replace(a.coordination, staff_per_kelurahan=6)
    )
    live = LiveInput(records_for(synthetic_city), records_for(synthetic_city).iloc[:0], AS_OF, 24)
    live = dataclasses.replace(live, period=pd.DataFrame(
        {"report_id": [], "kelurahan": [], "received_at": pd.to_datetime([], utc=True),
         "coordinated_at": pd.to_datetime([], utc=True), "closed_at": pd.to_datetime([], utc=True)}
    ))  # fmt: skip
    one = run_forecast(synthetic_city, ForecastTask("a", a, live, 0, None))
    again = run_forecast(synthetic_city, ForecastTask("a", a, live, 0, None))
    np.testing.assert_array_equal(one.backlog, again.backlog)
    np.testing.assert_array_equal(one.open_breach_6h, again.open_breach_6h)
    state_a = live_state(synthetic_city, a, live.records, as_of=AS_OF, hours=24, streams=RandomStreams(3, 0))  # fmt: skip
    state_b = live_state(synthetic_city, b, live.records, as_of=AS_OF, hours=24, streams=RandomStreams(3, 0))  # fmt: skip
    pd.testing.assert_frame_equal(state_a.reports.frame, state_b.reports.frame)  # CRN
    assert one.backlog[0] == len(live.records)
    more = run_forecast(synthetic_city, ForecastTask("b", b, live, 0, None))
    assert more.kelurahan_6h.sum() < one.kelurahan_6h.sum()  # more desk staff, fewer breaches


def test_records_the_scenario_does_not_have_are_refused(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    scenario = scenario_from_dict(SCENARIO, name="a")
    records = records_for(synthetic_city, n=10)
    check_records(synthetic_city, scenario, records)
    for column, value, fragment in (
        ("status", "ditolak", "report 3: unknown status 'ditolak'"),
        ("kelurahan_code", "31.99.99.9999", "report 3: kelurahan '31.99.99.9999' is not"),
        ("category", "potholes", "report 3: category 'potholes' is not in the scenario"),
    ):
        bad = records.copy()
        bad.loc[3, column] = value
        with pytest.raises(ScenarioError, match=fragment):
            check_records(synthetic_city, scenario, bad)


def test_forecast_replications_are_the_same_here_on_a_pool_and_on_dask(
    synthetic_dir, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from distributed import LocalCluster

    from twin.city.assembly import load_city
    from twin.experiments.forecast import run_forecast_tasks

    city = load_city(synthetic_dir)  # the shared cache dir, as the pool's workers load it
    records = records_for(city, n=20)
    period = pd.DataFrame(
        {"report_id": records["report_id"], "kelurahan": records["kelurahan_code"],
         "received_at": records["received_at"], "coordinated_at": records["coordinated_at"],
         "closed_at": pd.to_datetime(pd.Series([pd.NaT] * 20), utc=True)}
    )  # fmt: skip
    live = LiveInput(records, period, AS_OF, 12)
    scenario = scenario_from_dict(SCENARIO, name="a")
    tasks = [ForecastTask("a", scenario, live, r, str(synthetic_dir)) for r in range(2)]
    here = run_forecast_tasks(tasks, workers=1)
    pool = run_forecast_tasks(tasks, workers=2)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        dask = run_forecast_tasks(tasks, dask_address=cluster.scheduler_address)
    for other in (pool, dask):
        assert [x.kpis for x in other] == [x.kpis for x in here]
        assert all((a.backlog == b.backlog).all() for a, b in zip(other, here, strict=True))
    assert here[0].kpis != here[1].kpis  # the replications differ


def test_new_reports_arrive_at_the_real_hour_and_weekday(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    """Reports only on Wednesdays at noon: from Tuesday 10:30, the new ones are Wednesday's."""
    hourly = [0.0] * 24
    hourly[12] = 1.0
    weekly = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]  # Monday first
    scenario = scenario_from_dict(
        {"run": {"days": 1, "seed": 3},
         "demand": {"reports_per_day": 500.0, "hourly_profile": hourly, "weekly_profile": weekly,
                    "channels": {"jaki": {"share": 1.0, "entry_delay_min": 0.0}}}},
        name="noon",
    )  # fmt: skip
    assert AS_OF.tz_convert("Asia/Jakarta").day_name() == "Tuesday"
    state = live_state(
        synthetic_city, scenario, records_for(synthetic_city, n=10), as_of=AS_OF, hours=60,
        streams=RandomStreams(3, 0),
    )  # fmt: skip
    new = state.reports.frame["received_min"].to_numpy()[state.n_open :]
    assert len(new) > 100
    wednesday_noon = 1440 + 12 * 60  # on the run's clock: midnight of Tuesday is minute 0
    assert ((new >= wednesday_noon) & (new < wednesday_noon + 60)).all()
