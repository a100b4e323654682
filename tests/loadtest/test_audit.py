"""The zero-loss audit: unit tests (no server, no Locust)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from loadtest.audit import StoredRow, audit, read_ledger, read_stored

POOL = [
    {"category": "garbage", "lat": -6.2, "lon": 106.8, "kelurahan": "31.71.01.1001"},
    {"category": "flood", "lat": -6.1, "lon": 106.9, "kelurahan": "31.72.01.1001"},
]
WHERE = {(106.8, -6.2): "31.71.01.1001", (106.9, -6.1): "31.72.01.1001"}


def relocate(lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
    return [WHERE.get((lon, lat)) for lon, lat in zip(lons, lats, strict=True)]


def sent(key: str, p: int = 0) -> dict[str, object]:
    return {"e": "sent", "k": key, "p": p, "r": "app"}


def ack(key: str, report_id: int, **extra: object) -> dict[str, object]:
    return {"e": "ack", "k": key, "id": str(report_id), "n": 1, "rp": False, **extra}


def row(report_id: int, key: str | None, p: int = 0, **change: object) -> StoredRow:
    payload = POOL[p]
    values = {
        "id": report_id,
        "key": key,
        "lat": payload["lat"],
        "lon": payload["lon"],
        "kelurahan_code": payload["kelurahan"],
        "category": payload["category"],
        **change,
    }
    return StoredRow(**values)  # type: ignore[arg-type]


def check(ledger: list[dict[str, object]], stored: list[StoredRow]) -> dict[str, object]:
    return audit(ledger, stored, POOL, relocate)


def test_a_clean_run_passes() -> None:
    ledger = [sent("a"), ack("a", 1), sent("b", 1), ack("b", 2, n=3, rp=True)]
    result = check(ledger, [row(1, "a"), row(2, "b", 1)])
    assert result["ok"]
    assert (result["acknowledged"], result["stored"], result["lost"], result["duplicates"]) == (
        2, 2, 0, 0,
    )  # fmt: skip
    assert (result["retried"], result["replayed"]) == (1, 1)


def test_an_acknowledged_report_missing_is_lost() -> None:
    ledger = [sent("a"), ack("a", 1), sent("b"), ack("b", 2)]
    result = check(ledger, [row(1, "a")])
    assert not result["ok"]
    assert result["lost"] == 1
    assert result["examples"]["lost"] == ["b"]


def test_an_acknowledged_id_holding_another_report_is_lost() -> None:
    ledger = [sent("a"), ack("a", 2), sent("b"), ack("b", 1)]
    result = check(ledger, [row(1, "a"), row(2, "b")])
    assert result["lost"] == 2


def test_a_report_stored_twice_is_a_duplicate() -> None:
    # the negative control's case: the answer to the first attempt was lost, the retry had no key
    ledger = [sent("a"), ack("a", 2)]
    result = check(ledger, [row(1, "a"), row(2, "a")])
    assert not result["ok"]
    assert (result["lost"], result["duplicates"]) == (0, 1)
    assert result["examples"]["duplicated"] == ["a"]


def test_a_stored_report_nobody_sent_is_unexpected() -> None:
    result = check([sent("a"), ack("a", 1)], [row(1, "a"), row(2, "zzz"), row(3, None)])
    assert result["unexpected"] == 2
    assert not result["ok"]


def test_sent_but_unacknowledged_may_be_present_or_absent() -> None:
    ledger = [sent("a"), sent("b"), sent("c"), ack("c", 3)]
    result = check(ledger, [row(1, "a"), row(3, "c")])
    assert result["ok"]
    assert (result["unacknowledged_present"], result["unacknowledged_absent"]) == (1, 1)


def test_a_report_in_the_wrong_kelurahan_or_altered_fails() -> None:
    ledger = [sent("a"), ack("a", 1), sent("b", 1), ack("b", 2)]
    stored = [row(1, "a", kelurahan_code="31.75.01.1001"), row(2, "b", 1, lat=-6.3)]
    result = check(ledger, stored)
    assert result["wrong_kelurahan"] == 2  # b's stored point lies nowhere known
    assert result["altered"] == 1
    assert not result["ok"]


def test_ledger_files_are_read_and_a_torn_line_skipped(tmp_path: Path) -> None:
    (tmp_path / "ledger-a-1.jsonl").write_text('{"e":"sent","k":"a","p":0}\n{"e":"ack","k"')
    (tmp_path / "ledger-b-2.jsonl").write_text('{"e":"sent","k":"b","p":1}\n')
    assert [r["k"] for r in read_ledger(tmp_path)] == ["a", "b"]


def test_read_stored_finds_the_run_by_its_tag(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from intake.db import make_engine, migrate, reports
    from intake.store import now_utc

    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        for i, description in enumerate(
            ["Sampah [lt run1-0-0-1]", "Sampah [lt run1-0-0-2]", "Pohon [lt run2-0-0-1]", "x"]
        ):
            conn.execute(
                sa.insert(reports).values(
                    token=f"t{i}",
                    service_code="garbage",
                    description=description,
                    lat=-6.2,
                    lon=106.8,
                    kelurahan_code="31.71.01.1001",
                    channel="jaki",
                    status="menunggu",
                    created_at=now_utc(),
                    updated_at=now_utc(),
                )
            )
    engine.dispose()
    stored = read_stored(url, "run1")
    assert sorted(r.key or "" for r in stored) == ["run1-0-0-1", "run1-0-0-2"]
    assert {r.kelurahan_code for r in stored} == {"31.71.01.1001"}


def test_an_out_folder_with_an_earlier_runs_ledgers_is_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from twin_cli.main import main

    (tmp_path / "ledger-host-1.jsonl").write_text('{"e":"sent","k":"old-0-0-1"}\n')
    assert main(["loadtest", "--profile", "smoke", "--out", str(tmp_path)]) == 2
    assert "earlier load test's ledgers" in capsys.readouterr().err
