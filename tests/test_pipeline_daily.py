"""`make pipeline` as a daily job: with a trained model in place it builds, scores the newest as_of with that model
and refreshes `customers`, without training; it trains with --retrain, when there is no model yet, and when
user_features lacks a feature the model needs. Runs in this process and its SparkSession, as
test_dashboard_real_build does; expectations are read with deltalake and from the model files."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pandas as pd
import pytest
from deltalake import DeltaTable

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# Training options: used only when the pipeline trains, and then cheap.
QUICK = ["--quick", "--models", "baseline,logreg", "--seed", "3"]


def table(home, name) -> pd.DataFrame:
    return DeltaTable(str(home / "warehouse" / "sparkify.db" / name)).to_pandas()


def run_ids(home) -> set[str]:
    if not (home / "warehouse" / "sparkify.db" / "model_runs").exists():
        return set()
    return set(table(home, "model_runs")["run_id"])


def latest(home) -> str | None:
    pointer = home / "models" / "latest"
    return pointer.read_text().strip() if pointer.is_file() else None


def scoring_population(home) -> tuple[dt.date, set[str]]:
    """The newest as_of (the scoring date: the day after the last event) and the users user_features has there."""
    features = table(home, "user_features")
    newest = features.loc[features["is_scoring_date"], "as_of_date"].max()
    return newest, set(features.loc[features["as_of_date"] == newest, "user_id"])


def scores_of(home, run_id: str, as_of) -> pd.DataFrame:
    scores = table(home, "churn_scores")
    return scores[(scores["model_run_id"] == run_id) & (scores["as_of_date"] == as_of)]


def utc_now() -> pd.Timestamp:
    """Now, as deltalake reads churn_scores.scored_at: in UTC (the session's time zone)."""
    return pd.Timestamp.now(tz="UTC")


@pytest.fixture(scope="module")
def current(built_lakehouse, spark) -> str:
    """The run id of a trained model in the session lakehouse: one another test module trained, or, on a lakehouse
    without one, the first pipeline's, which must train (one new model_runs row, named by models/latest)."""
    from sparkify import pipeline

    home = built_lakehouse.home
    if latest(home) is None:
        before = run_ids(home)
        assert pipeline.main(QUICK) == 0
        new = run_ids(home) - before
        assert len(new) == 1, new
        assert latest(home) == next(iter(new))
    return latest(home)


def test_daily_pipeline_scores_the_newest_as_of_with_the_current_model_without_training(
        current, built_lakehouse, caplog):
    from sparkify import pipeline

    home = built_lakehouse.home
    before, started = run_ids(home), utc_now()
    caplog.set_level(logging.INFO, logger="sparkify.pipeline")
    assert pipeline.main(QUICK) == 0

    assert run_ids(home) == before
    assert latest(home) == current
    as_of, users = scoring_population(home)
    scores = scores_of(home, current, as_of)
    assert set(scores["user_id"]) == users and len(scores) == len(users)
    assert (scores["scored_at"] >= started).all()  # scored by this run, not left from an earlier one
    # customers shows each scored user's new score: it was rebuilt after the scoring
    customers = table(home, "customers").set_index("user_id").loc[sorted(users)]
    expected = scores.set_index("user_id").loc[sorted(users)]
    assert (customers["model_run_id"] == current).all()
    assert (customers["scored_at"] == expected["scored_at"]).all()
    assert customers["churn_probability"].tolist() == pytest.approx(expected["churn_probability"].tolist())
    assert f"pipeline scores with the current model {current} (no retraining" in caplog.text
    assert "pipeline step score took" in caplog.text and "train and score" not in caplog.text


def test_retrain_trains_a_new_model_and_scores_the_newest_as_of_with_it(current, built_lakehouse, caplog):
    from sparkify import pipeline

    home = built_lakehouse.home
    before = run_ids(home)
    caplog.set_level(logging.INFO, logger="sparkify.pipeline")
    assert pipeline.main(["--retrain", *QUICK]) == 0

    new = run_ids(home) - before
    assert len(new) == 1, new
    run_id = new.pop()
    assert latest(home) == run_id != current
    as_of, users = scoring_population(home)
    assert set(scores_of(home, run_id, as_of)["user_id"]) == users
    assert "pipeline trains a new model (--retrain)" in caplog.text
    assert "pipeline step train and score took" in caplog.text


def test_the_pipeline_trains_when_there_is_no_model_or_it_needs_a_feature_user_features_lacks(
        current, built_lakehouse, spark, tmp_path):
    from sparkify import pipeline

    home = built_lakehouse.home
    saved, why = pipeline.current_model(spark, home, retrain=False)
    assert saved is not None and saved.run_id == latest(home) and "scores with the current model" in why
    assert pipeline.current_model(spark, home, retrain=True)[0] is None

    empty = tmp_path / "empty"
    saved, why = pipeline.current_model(spark, empty, retrain=False)
    assert saved is None and "trains a first model" in why

    # the current model, saved as if trained on one more feature than user_features has
    meta = json.loads((home / "models" / latest(home) / "model.json").read_text())
    missing = "feature_dropped_since"
    assert missing not in table(home, "user_features").columns
    meta["features"] = [*meta["features"], missing]
    other = tmp_path / "other"
    (other / "models" / meta["run_id"]).mkdir(parents=True)
    (other / "models" / meta["run_id"] / "model.json").write_text(json.dumps(meta))
    (other / "models" / "latest").write_text(meta["run_id"] + "\n")
    saved, why = pipeline.current_model(spark, other, retrain=False)
    assert saved is None
    assert f"the current model {meta['run_id']} cannot score this lakehouse" in why and missing in why
