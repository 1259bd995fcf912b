"""The dashboard in a real headless chromium, over a synthetic lakehouse (no Spark needed).

The app is served by waitress in a thread, with a fake what-if function so that the what-if page
does not need a trained model. Expected numbers are read from the table files with DuckDB, not
from the app. Each page is screenshotted to $SPARKIFY_HOME/reports/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest

for _module in ("dash", "dash_bootstrap_components", "dash_ag_grid", "plotly"):
    pytest.importorskip(_module, reason="the dashboard packages are not installed (pyproject dependencies)")

from dashboard.app import create_app
from dashboard.data import Lakehouse
from dashboard.server import serve_in_thread
from dashboard.whatif import WhatIfAdapter
from sparkify import features as registry
from synthetic_lakehouse import make_lakehouse

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
PAGES = {  # path -> a selector that appears once the page has rendered its data
    "/": "#kpi-high-risk",
    "/customer": "text=Look up a customer",
    "/at-risk": ".ag-row",
    "/model": "text=All models in this run",
    "/what-if": "#whatif-probability",
}
BAD_INPUTS = ["' or 1=1 --", "x" * 10_240, "Zoë 東京 🎵 <script>alert(1)</script>"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Debian's chromium at {CHROMIUM}"),
]


def fake_what_if(features: dict) -> dict:
    """A stand-in for models_ml.whatif: more thumbs down, adverts and idle days mean more risk."""
    p = (0.03 + 4.0 * features.get("thumbs_down_per_song_28d", 0) + 1.2 * features.get("adverts_per_song_28d", 0)
         + 0.01 * features.get("days_since_last_activity", 0))
    p = min(p, 0.95)
    band = "high" if p >= 0.25 else "medium" if p >= 0.10 else "low"
    return {"probability": p, "risk_band": band, "reasons": [{"text": "Thumbs down per song is high"}]}


def table_glob(home: Path, name: str) -> str:
    return f"{home}/warehouse/sparkify.db/{name}/**/*.parquet"


def percent(p: float) -> str:
    return f"{p * 100:.1f}%" if p * 100 < 10 else f"{p * 100:.0f}%"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    # sessions as Delta, the rest as Parquet (churn_scores hive-partitioned): both readers in play
    return make_lakehouse(tmp_path_factory.mktemp("sparkify_home"), users=300, seed=11,
                          delta_tables=("sessions",))


@pytest.fixture(scope="module")
def server(home):
    lakehouse = Lakehouse(home)
    lakehouse.warm()
    whatif = WhatIfAdapter(function=fake_what_if, warmup_features=lakehouse.typical_features)
    running = serve_in_thread(create_app(lakehouse, whatif, users={}), threads=4)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.problems = []
    tab.on("console", lambda m: tab.problems.append(f"console: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.problems.append(f"pageerror: {e}"))
    tab.on("dialog", lambda d: (tab.problems.append(f"dialog: {d.message}"), d.dismiss()))
    yield tab
    context.close()


def current_scores(home: Path):
    """Latest score per user at the latest as_of date (latest scored_at wins), with churn status."""
    return duckdb.sql(f"""
        with scores as (
            select * from read_parquet('{table_glob(home, "churn_scores")}', hive_partitioning = true)
            qualify row_number() over (partition by user_id, as_of_date order by scored_at desc) = 1
        )
        select scores.user_id, scores.churn_probability, users.first_name || ' ' || users.last_name as name
        from scores
        join read_parquet('{table_glob(home, "users")}') as users using (user_id)
        where scores.as_of_date = (select max(as_of_date) from scores) and not users.is_churned
        order by scores.churn_probability desc
    """).fetchall()


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_loads_without_console_errors(server, page, home, path):
    page.goto(server.url + path)
    page.wait_for_selector(PAGES[path])
    page.wait_for_load_state("networkidle")
    shots = home / "reports" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    name = path.strip("/") or "overview"
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert (shots / f"{name}.png").stat().st_size > 10_000
    assert "Traceback" not in page.inner_text("body")
    assert page.problems == []


def test_searching_a_known_user_shows_their_probability(server, page, home):
    user, probability, name = current_scores(home)[5]
    page.goto(server.url + "/customer")
    page.fill("#customer-search", user)
    page.press("#customer-search", "Enter")
    page.wait_for_url(re.compile(rf"/customer\?user={user}$"))
    sync_api.expect(page.locator("#customer-probability")).to_have_text(percent(probability))
    sync_api.expect(page.locator("#customer-name")).to_have_text(name)
    assert page.problems == []


def test_unknown_id_shows_a_friendly_message(server, page):
    page.goto(server.url + "/customer?user=no-such-user-123")
    sync_api.expect(page.locator("#customer-not-found")).to_contain_text("No customer with id")
    sync_api.expect(page.locator("#customer-not-found")).to_contain_text("no-such-user-123")
    assert page.problems == []


def test_clicking_an_at_risk_row_opens_that_customer(server, page, home):
    user, probability, name = current_scores(home)[0]
    page.goto(server.url + "/at-risk")
    first = page.locator(".ag-center-cols-container .ag-row[row-index='0'] [col-id='name']")
    sync_api.expect(first).to_have_text(name)
    first.click()
    page.wait_for_url(re.compile(rf"/customer\?user={user}$"))
    sync_api.expect(page.locator("#customer-probability")).to_have_text(percent(probability))
    assert page.problems == []


def test_what_if_slider_changes_the_probability(server, page):
    page.goto(server.url + "/what-if")
    number = page.locator("#whatif-probability")
    sync_api.expect(number).to_have_text(re.compile(r"%$"))
    before = number.inner_text()
    page.locator("[role=slider]").first.focus()  # thumbs down per song: the model's most important input
    page.keyboard.press("End")
    sync_api.expect(number).not_to_have_text(before)
    assert float(number.inner_text().rstrip("%")) > float(before.rstrip("%"))
    assert page.problems == []


def test_what_if_sliders_are_the_models_top_features_and_bad_typed_values_are_refused(server, page, home):
    meta = json.loads((home / "models" / (home / "models" / "latest").read_text().strip() / "model.json").read_text())
    ranked = sorted((f for f in meta["features"] if f != "is_paid"), key=lambda f: -meta["importance"][f])
    page.goto(server.url + "/what-if")
    number = page.locator("#whatif-probability")
    sync_api.expect(number).to_have_text(re.compile(r"%$"))
    labels = page.locator(".control-label").all_inner_texts()
    assert labels[:5] == [registry.get(f).label for f in ranked[:5]]
    typed = page.locator(".whatif-typed").first
    for text, why in (("inf", "not a finite number"), ("1e9", "outside the range")):
        typed.fill(text)
        typed.press("Enter")
        sync_api.expect(page.locator("#whatif-invalid")).to_contain_text(why)
    low, high = meta["feature_ranges"][ranked[0]]
    typed.fill(f"{(low + high) / 2:.4f}")
    typed.press("Enter")
    sync_api.expect(number).to_have_text(re.compile(r"%$"))
    assert "Traceback" not in page.inner_text("body")
    assert page.problems == []


def test_model_page_shows_the_latest_backtest_per_snapshot(server, page, home):
    snapshots = duckdb.sql(f"""
        select count(*) from read_parquet('{table_glob(home, "model_backtests")}')
        where scope = 'snapshot' and created_at = (
            select max(created_at) from read_parquet('{table_glob(home, "model_backtests")}'))""").fetchall()[0][0]
    page.goto(server.url + "/model")
    page.wait_for_selector("#backtest-snapshots .ag-row")
    assert page.locator("#backtest-snapshots .ag-center-cols-container .ag-row").count() == snapshots
    sync_api.expect(page.locator("#backtest-pooled")).to_contain_text("95% CI")
    assert page.problems == []


@pytest.mark.parametrize("text", BAD_INPUTS, ids=["sql", "10kB", "unicode"])
def test_ill_formed_input_gets_a_calm_answer_and_shows_no_customer(server, page, home, text):
    page.goto(server.url + "/customer")
    page.fill("#customer-search", text)
    page.press("#customer-search", "Enter")
    sync_api.expect(page.locator("#customer-not-found")).to_contain_text("No customer with id")
    page.goto(server.url + "/customer?user=" + quote(text))
    sync_api.expect(page.locator("#customer-not-found")).to_contain_text("No customer with id")
    body = page.inner_text("body")
    assert "Traceback" not in body
    assert not [name for name in Lakehouse(home).customers()["name"] if name in body]  # none matched
    assert page.problems == []
