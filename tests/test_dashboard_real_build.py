"""The dashboard on the real dbt output of the test build, trained and scored by the ML script: the
pages other dashboard tests check on synthetic tables must work on the tables the pipeline writes,
with its real model names and columns. Expectations are read with deltalake, not through the app."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable

from test_dashboard_app import page

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def table(home, name):
    return DeltaTable(str(home / "warehouse" / "sparkify.db" / name)).to_pandas()


@pytest.fixture(scope="module")
def scored(built_lakehouse, spark):
    """`make pipeline TRAIN_ARGS='--retrain --quick ...'` on the test build, in this process and its SparkSession:
    dbt build, train (also when another test trained a model already), score, refresh `customers`. Returns the
    home and the run it recorded."""
    from sparkify import pipeline

    if built_lakehouse.table_format.name != "delta":
        pytest.fail("the session lakehouse is expected on Delta here")
    before = set(table(built_lakehouse.home, "model_runs")["run_id"]) if (
        built_lakehouse.home / "warehouse" / "sparkify.db" / "model_runs").exists() else set()
    assert pipeline.main(["--retrain", "--quick", "--models", "baseline,logreg", "--seed", "3"]) == 0
    new = set(table(built_lakehouse.home, "model_runs")["run_id"]) - before
    assert len(new) == 1, new
    return built_lakehouse.home, new.pop()


@pytest.fixture(scope="module")
def client(scored):
    from dashboard.app import create_app
    from dashboard.data import Lakehouse
    from dashboard.whatif import WhatIfAdapter

    home, _ = scored
    return create_app(Lakehouse(home, check_interval=0), WhatIfAdapter(home=home), users={}).server.test_client()


def latest_scores(home, run_id):
    scores = table(home, "churn_scores")
    mine = scores[scores["model_run_id"] == run_id]
    return mine[mine["as_of_date"] == mine["as_of_date"].max()].sort_values("churn_probability", ascending=False)


@pytest.mark.parametrize("path", ["/", "/customer", "/at-risk", "/model", "/what-if"])
def test_every_page_renders_on_the_real_tables(client, path):
    text = page(client, path)
    assert "Traceback" not in text and "could not be prepared" not in text and "make build" not in text


def test_the_riskiest_customer_shows_the_score_and_reason_the_ml_script_wrote(client, scored):
    home, run_id = scored
    top = latest_scores(home, run_id).iloc[0]
    text = page(client, "/customer", f"?user={top['user_id']}")
    probability = top["churn_probability"]
    shown = f"{probability * 100:.1f}%" if probability < 0.1 else f"{probability * 100:.0f}%"
    assert shown in text and top["user_id"] in text
    assert top["reason_1"] and top["reason_1"] in text


def test_every_customer_of_the_users_table_is_in_the_dashboards_customers(scored):
    from dashboard.data import Lakehouse

    home, _ = scored
    assert set(Lakehouse(home).customers()["user_id"]) == set(table(home, "users")["user_id"])


def test_the_model_page_names_the_model_the_run_selected(client, scored):
    home, run_id = scored
    runs = table(home, "model_runs")
    selected = runs.loc[runs["run_id"] == run_id, "selected_model"].iloc[0]
    text = page(client, "/model")
    assert run_id in text and selected in text
