"""The served app without a browser: production settings, auth, calm answers to bad input."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

for _module in ("dash", "dash_bootstrap_components", "dash_ag_grid", "plotly"):
    pytest.importorskip(_module, reason="the dashboard packages are not installed (pyproject dependencies)")

from werkzeug.security import generate_password_hash

from dashboard.app import create_app
from dashboard.auth import AuthConfigError, parse_users
from dashboard.data import Lakehouse
from dashboard.whatif import WhatIfAdapter
from synthetic_lakehouse import make_lakehouse

ROOT = Path(__file__).resolve().parents[1]


def page(client, pathname: str, search: str = "") -> str:
    """Render a page the way the browser does: the Dash Pages router callback."""
    body = {
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [{"id": "_pages_content", "property": "children"}, {"id": "_pages_store", "property": "data"}],
        "inputs": [{"id": "_pages_location", "property": "pathname", "value": pathname},
                   {"id": "_pages_location", "property": "search", "value": search}],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:500]
    return response.get_data(as_text=True)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_lakehouse(tmp_path_factory.mktemp("home"), users=60, seed=3)


@pytest.fixture(scope="module")
def client(home):
    lakehouse = Lakehouse(home, check_interval=0)
    app = create_app(lakehouse, WhatIfAdapter(function=lambda f: 0.1), users={})
    return app.server.test_client()


def test_app_runs_in_production_mode(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    config = json.loads(re.search(r'id="_dash-config" type="application/json">(.*?)</script>', html).group(1))
    assert config["ui"] is False and config["props_check"] is False  # debug off: no dev tools, no tracebacks
    assert config["serve_locally"] is True
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html  # nothing is fetched from the internet


@pytest.mark.parametrize("path", ["/", "/customer", "/at-risk", "/model", "/what-if", "/no-such-page"])
def test_every_page_renders(client, path):
    text = page(client, path)
    assert "Traceback" not in text and "could not be prepared" not in text


def test_known_customer_shows_probability_as_a_percentage(client, home):
    import duckdb

    scores = duckdb.sql(f"""
        select user_id, churn_probability
        from read_parquet('{home}/warehouse/sparkify.db/churn_scores/**/*.parquet', hive_partitioning = true)
        qualify row_number() over (
            partition by user_id order by as_of_date desc, scored_at desc) = 1
        order by churn_probability desc limit 1""").fetchall()[0]
    user, probability = scores
    text = page(client, "/customer", f"?user={user}")
    expected = f"{probability * 100:.1f}%" if probability < 0.1 else f"{probability * 100:.0f}%"
    assert expected in text and user in text


@pytest.mark.parametrize("query", ["no-such-user-123", "%27%20or%201%3D1%20--", "x" * 10_240,
                                   "Zo%C3%AB%20%E6%9D%B1%E4%BA%AC%20%F0%9F%8E%B5%3Cscript%3E"])
def test_ill_formed_customer_ids_get_a_calm_answer_and_match_no_customer(client, home, query):
    text = page(client, "/customer", f"?user={query}")
    assert "No customer with id" in text and "Traceback" not in text
    # an id pasted into a query (`' or 1=1 --`) would match every customer and show the first one
    names = Lakehouse(home).customers()["name"]
    assert not [name for name in names if name in text]


def test_search_box_puts_a_unique_name_in_the_url_as_the_customer_number(client, home):
    lakehouse = Lakehouse(home)
    customers = lakehouse.customers()
    counts = customers["name"].str.lower().value_counts()
    row = customers[customers["name"].str.lower() == counts[counts == 1].index[0]].iloc[0]
    body = {"output": "customer-nav.href", "outputs": {"id": "customer-nav", "property": "href"},
            "inputs": [{"id": "customer-search", "property": "n_submit", "value": 1},
                       {"id": "customer-go", "property": "n_clicks", "value": 0}],
            "state": [{"id": "customer-search", "property": "value", "value": row["name"].upper()}],
            "changedPropIds": ["customer-search.n_submit"]}
    client.get("/")
    response = client.post("/_dash-update-component", json=body)
    assert response.json["response"]["customer-nav"]["href"] == f"/customer?user={row['user_id']}"


def test_basic_auth_guards_every_route(home):
    users = {"alice": generate_password_hash("s3cret")}
    client = create_app(Lakehouse(home), WhatIfAdapter(function=lambda f: 0.1), users=users).server.test_client()
    assert client.get("/").status_code == 401
    assert client.get("/_dash-layout").status_code == 401
    good = base64.b64encode(b"alice:s3cret").decode()
    bad = base64.b64encode(b"alice:wrong").decode()
    assert client.get("/", headers={"Authorization": f"Basic {bad}"}).status_code == 401
    assert client.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200
    assert client.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200  # remembered
    assert client.get("/", headers={"Authorization": f"Basic {bad}"}).status_code == 401  # and a retry fails


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_failed_sign_ins_are_limited_per_client_until_the_window_passes(home):
    from dashboard import auth

    now = [1000.0]
    app = create_app(Lakehouse(home), WhatIfAdapter(function=lambda f: 0.1),
                     users={"alice": generate_password_hash("s3cret")})
    app.server.wsgi_app = auth.BasicAuth(app.server.wsgi_app.app, app.server.wsgi_app.users, clock=lambda: now[0])
    client = app.server.test_client()
    other = {"REMOTE_ADDR": "10.0.0.2"}
    for attempt in range(auth.MAX_FAILURES):
        assert client.get("/", headers=basic("alice", f"guess{attempt}")).status_code == 401
    blocked = client.get("/", headers=basic("alice", "s3cret"))
    assert blocked.status_code == 429  # even the right password, until the window passes
    assert int(blocked.headers["Retry-After"]) == auth.FAILURE_WINDOW_S
    assert client.get("/", headers=basic("alice", "s3cret"), environ_base=other).status_code == 200
    now[0] += auth.FAILURE_WINDOW_S + 1
    assert client.get("/", headers=basic("alice", "s3cret")).status_code == 200


def test_an_unknown_user_costs_one_hash_check_like_a_wrong_password(home, monkeypatch):
    from dashboard import auth

    hashed = generate_password_hash("s3cret", method="pbkdf2:sha256:1000")
    middleware = auth.BasicAuth(lambda environ, start: [b""], {"alice": hashed})
    checked = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: checked.append(h) or real(h, p))
    assert not middleware._authorised(basic("alice", "wrong")["Authorization"])
    assert not middleware._authorised(basic("mallory", "wrong")["Authorization"])
    assert len(checked) == 2
    assert checked[0] == hashed and checked[1] != hashed
    assert checked[1].rsplit("$", 2)[0] == hashed.rsplit("$", 2)[0] == "pbkdf2:sha256:1000"


def test_auth_users_come_from_one_environment_variable():
    hashed = generate_password_hash("pw")
    assert parse_users(f"alice:{hashed}, bob:{hashed}") == {"alice": hashed, "bob": hashed}
    assert parse_users(None) == {}
    for empty in ("", " ", " , "):
        with pytest.raises(AuthConfigError, match="is set but lists no user"):
            parse_users(empty)
    with pytest.raises(AuthConfigError, match="expected 'user:hash'"):
        parse_users("alice")
    with pytest.raises(AuthConfigError, match="not a werkzeug hash"):
        parse_users("alice:plaintext")


@pytest.mark.parametrize("users, host, message", [
    ("", "127.0.0.1", "SPARKIFY_DASH_USERS is set but lists no user"),
    ("alice", "127.0.0.1", "expected 'user:hash'"),
    (None, "0.0.0.0", "refusing to serve the dashboard on 0.0.0.0 without sign-in"),
])
def test_the_dashboard_fails_closed_at_start_up(home, users, host, message):
    env = {k: v for k, v in os.environ.items() if k not in ("SPARKIFY_DASH_USERS", "SPARKIFY_DASH_ALLOW_OPEN")}
    if users is not None:
        env["SPARKIFY_DASH_USERS"] = users
    result = subprocess.run([sys.executable, "-m", "dashboard", "--home", str(home), "--host", host, "--port", "0",
                             "--no-warm"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr


def test_an_open_dashboard_off_loopback_needs_the_opt_in_and_warns():
    from dashboard.__main__ import check_exposure

    assert check_exposure("127.0.0.1", has_users=False, allow_open=False) is None
    assert check_exposure("::1", has_users=False, allow_open=False) is None
    assert check_exposure("0.0.0.0", has_users=True, allow_open=False) is None
    with pytest.raises(SystemExit, match="--allow-open"):
        check_exposure("dashboard.example.com", has_users=False, allow_open=False)
    assert "WITHOUT sign-in" in check_exposure("0.0.0.0", has_users=False, allow_open=True)


def test_cli_explains_its_options():
    result = subprocess.run([sys.executable, "-m", "dashboard", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    assert "SPARKIFY_DASH_HOST" in result.stdout and "SPARKIFY_DASH_PORT" in result.stdout


@pytest.mark.parametrize("path, command", [("/", "make build"), ("/customer", "make build"),
                                           ("/at-risk", "make train"), ("/model", "make train"),
                                           ("/what-if", "make build")])
def test_pages_say_what_to_run_before_the_first_build(tmp_path, path, command):
    app = create_app(Lakehouse(tmp_path), WhatIfAdapter(target="no_such_module_for_sparkify"), users={})
    text = page(app.server.test_client(), path, "?user=1" if path == "/customer" else "")
    assert command in text and "Traceback" not in text


def test_model_page_shows_the_latest_backtest_with_its_intervals(client, home):
    import duckdb

    pooled = duckdb.sql(f"""
        select roc_auc, roc_auc_lo, roc_auc_hi
        from read_parquet('{home}/warehouse/sparkify.db/model_backtests/*.parquet')
        where scope = 'pooled' order by created_at desc limit 1""").fetchall()[0]
    text = page(client, "/model")
    assert "backtest-pooled" in text and "backtest-snapshots" in text
    assert f"{pooled[0]:.3f}" in text and f"95% CI {pooled[1]:.3f}–{pooled[2]:.3f}" in text


def test_model_page_without_a_backtest_says_how_to_make_one(tmp_path):
    home = make_lakehouse(tmp_path, users=30, seed=5)
    shutil.rmtree(home / "warehouse" / "sparkify.db" / "model_backtests")
    client = create_app(Lakehouse(home, check_interval=0), WhatIfAdapter(function=lambda f: 0.1),
                        users={}).server.test_client()
    text = page(client, "/model")
    assert "backtest-none" in text and "make backtest" in text and "Traceback" not in text


def test_csv_export_neutralises_cells_a_spreadsheet_would_run():
    import pandas as pd

    from dashboard.components import csv_safe

    frame = pd.DataFrame({"name": ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "Bob", None, "\tTab"],
                          "score": [-0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    safe = csv_safe(frame)
    assert safe["name"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "Bob", None, "'\tTab"]
    assert safe["score"].tolist() == frame["score"].tolist()  # numbers are not text
    assert frame["name"][0].startswith("=")  # the frame the page holds is untouched
