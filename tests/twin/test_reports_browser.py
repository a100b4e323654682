"""Every kind of HTML report, opened in a real browser (the system's headless Chromium).

Each page must load offline with no console error and no request leaving the file, show its
summary, keep every table within the page's width, and show its plots (images decoded, plotly
maps drawn). Full-page screenshots go to reports_out/browser-check/ for review.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from tests.reports_html import external_sources

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "reports_out" / "browser-check"

if not Path(CHROMIUM).is_file() and not os.environ.get("CI"):
    pytest.skip(
        "no Chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def reports(
    tmp_path_factory: pytest.TempPathFactory, real_city: Any
) -> Iterator[dict[str, tuple[Path, int, int]]]:
    """Each kind of report, made on the synthetic city (the run on real Jakarta, 2 days):
    name -> (page, figures expected, interactive maps expected)."""
    with pytest.MonkeyPatch.context() as env:
        yield _make_reports(tmp_path_factory.mktemp("reports"), real_city, env)


def _make_reports(
    root: Path, city: Any, env: pytest.MonkeyPatch
) -> dict[str, tuple[Path, int, int]]:
    from tests.synthetic import write_city
    from twin.city.assembly import load_city
    from twin.experiments.allocate import Search, run_search
    from twin.experiments.allocation import check_targets, parse_budget
    from twin.experiments.assumptions import load_assumptions
    from twin.experiments.replications import Runner
    from twin.experiments.sensitivity import morris
    from twin.experiments.sweep import load_sweep
    from twin.model.runner import run_scenario
    from twin.model.scenario import Scenario, load_scenario, scenario_from_dict
    from twin.reports.allocation_report import write_allocation
    from twin.reports.checks import write_sensitivity_report, write_validation_report
    from twin.reports.run_files import write_run
    from twin.reports.studies import compare, replicate, run_sweep

    env.setenv("TWIN_CACHE_DIR", str(root / "cache"))  # the synthetic city's cache
    data = write_city(root / "data")
    runner = Runner(data_dir=str(data), workers=1)
    base = Scenario(name="small")
    small = dataclasses.replace(
        base,
        run=dataclasses.replace(base.run, days=3),
        demand=dataclasses.replace(base.demand, reports_per_day=80.0),
    )
    out: dict[str, tuple[Path, int, int]] = {}

    jakarta = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "jakarta-2016.toml")
    result = run_scenario(city, jakarta, days=2)
    written = write_run(result, city, root / "run")
    figures = [p for p in written if p.suffix == ".png"]
    assert root / "run" / "report.html" in written
    out["run"] = (root / "run" / "report.html", len(figures), 1)

    replicate(small, 3, runner, root / "replications")
    out["replications"] = (root / "replications" / "report.html", 1, 1)

    lean, rich = (
        dataclasses.replace(small, name=name, crews=dataclasses.replace(
            small.crews, per_kelurahan=crews, complaint_duty_share=duty))
        for name, crews, duty in (("lean", 10, 0.1), ("rich", 50, 0.5))
    )  # fmt: skip
    compare([lean, rich], 3, runner, root / "comparison")
    out["comparison"] = (root / "comparison" / "report.html", 2, 1)

    (root / "base.toml").write_text("[run]\ndays = 3\n[demand]\nreports_per_day = 80.0\n")
    (root / "sweep.toml").write_text(
        'scenario = "base.toml"\nreplications = 2\n[grid]\n"crews.per_kelurahan" = [10, 30, 50]\n'
        '"crews.dispatch" = ["nearest", "fifo"]\n'
    )
    run_sweep(load_sweep(root / "sweep.toml"), runner, root / "sweep")
    out["sweep"] = (root / "sweep" / "report.html", 2, 1)

    table = pd.DataFrame(
        [
            {"period": "jakarta-2016", "check": "in sample", "role": "volume",
             "kpi": "reports_per_day", "published": 1000.0, "simulated": 1012.3, "pi_low": 990.1,
             "pi_high": 1034.5, "tolerance": "±10%", "pass": True, "in_interval": True,
             "source": "Smart City Jakarta (2017)"},
            {"period": "jakarta-2016", "check": "leave one out", "role": "predicted",
             "kpi": "mean_resolution_of_resolved_h", "published": 9.0, "simulated": 12.4,
             "pi_low": 11.8, "pi_high": 13.0, "tolerance": "±20%", "pass": False,
             "in_interval": False, "source": "Smart City Jakarta (2017)"},
        ]
    )  # fmt: skip
    (root / "validation").mkdir()
    write_validation_report(table, 3, root / "validation")
    out["validation"] = (root / "validation" / "report.html", 1, 0)

    s = scenario_from_dict({"run": {"days": 2, "seed": 9}, "demand": {"reports_per_day": 200.0}},
                           name="s")  # fmt: skip
    (root / "ranges.toml").write_text(
        '["crews.proof_min"]\nlow = 1.0\nhigh = 20.0\n'
        '["coordination.handling.mean_min"]\nlow = 20.0\nhigh = 240.0\n'
    )
    found = morris(s, load_assumptions(root / "ranges.toml", s), runner, trajectories=2)
    (root / "sensitivity").mkdir()
    write_sensitivity_report(found, "s", 2, 2, root / "sensitivity")
    out["sensitivity"] = (root / "sensitivity" / "report.html", 1, 0)

    few = scenario_from_dict({"run": {"days": 3}, "demand": {"reports_per_day": 100.0},
                              "coordination": {"staff_per_kelurahan": 1}}, name="few")  # fmt: skip
    search = Search(few, parse_budget("35"), check_targets(None), replications=2, rounds=1)
    town = load_city(str(data))
    outcome = run_search(search, town, runner, root / "allocation" / "tables")
    write_allocation(outcome, search, town.table[~town.is_seribu], town.kelurahan.codes,
                     root / "allocation")  # fmt: skip
    out["allocation"] = (root / "allocation" / "report.html", 1, 1)
    return out


@pytest.fixture(scope="module")
def browser() -> Any:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


KINDS = ["run", "replications", "comparison", "sweep", "validation", "sensitivity", "allocation"]


@pytest.mark.parametrize("kind", KINDS)
def test_report_renders_in_chromium(kind: str, reports: dict[str, Any], browser: Any) -> None:
    page_path, figures, maps = reports[kind]
    text = page_path.read_text(encoding="utf-8")
    assert external_sources(text) == []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r: Any) -> None:
        if r.request.url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:  # offline: anything else is refused, and recorded
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(page_path.as_uri(), wait_until="load")
    if maps:
        page.wait_for_selector(".js-plotly-plot .maplibregl-canvas", timeout=30_000)
        page.wait_for_timeout(500)
    assert errors == []
    assert outside == []
    facts = page.evaluate(
        """() => ({
        width: document.documentElement.clientWidth,
        tables: Array.from(document.querySelectorAll('table')).map(t => t.getBoundingClientRect().right),
        images: Array.from(document.querySelectorAll('figure img')).map(i => i.naturalWidth),
        maps: document.querySelectorAll('.js-plotly-plot .maplibregl-canvas').length,
        summary: document.querySelectorAll('.summary li').length,
        text: document.body.innerText,
        })"""
    )
    assert facts["summary"] >= 1
    assert facts["tables"], "no table"
    assert max(facts["tables"]) <= facts["width"], "a table is wider than the page"
    assert len(facts["images"]) == figures
    assert all(w > 0 for w in facts["images"]), "a figure did not decode"
    assert facts["maps"] == maps
    assert "-0.0" not in facts["text"].replace("-0.0x", "")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{kind}.png"), full_page=True)
    page.close()


def test_long_tables_sort_on_a_click(reports: dict[str, Any], browser: Any) -> None:
    page = browser.new_page()
    page.goto(reports["run"][0].as_uri())
    table = page.locator("table.sortable").last  # every kelurahan
    header = table.locator("th", has_text="reports")
    header.first.click()
    header.first.click()  # twice: descending
    values = table.locator("tbody tr td:nth-child(5)").evaluate_all(
        "cells => cells.map(c => parseFloat(c.dataset.sort))"
    )
    assert len(values) == 267
    assert values == sorted(values, reverse=True)
    assert values[0] > values[-1]
    page.close()
