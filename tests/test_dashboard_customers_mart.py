"""The dbt `customers` mart the dashboard reads, built on the eventsim sample with a small hand-made churn_scores
table, checked against pandas computations from the users and daily_activity tables."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from conftest import dbt

pytestmark = [pytest.mark.spark, pytest.mark.slow]

COMPARED = ("active_days", "songs_per_active_day", "sessions", "listen_hours", "songs_7d",
            "thumbs_down_per_100_songs", "adverts_per_100_songs")


def hand_made_scores(user_ids: list[str]) -> pd.DataFrame:
    """Two scoring dates over overlapping populations, one user re-scored later the same day, and
    users never scored at all (the last ten)."""
    first, second = dt.date(2018, 11, 19), dt.date(2018, 11, 26)
    rows = []
    for i, user in enumerate(user_ids[:30]):
        rows.append((user, first, (i % 10) / 10 + 0.05, dt.datetime(2018, 11, 19, 6)))
    for i, user in enumerate(user_ids[15:-10]):
        rows.append((user, second, ((i + 3) % 10) / 10 + 0.02, dt.datetime(2018, 11, 26, 6)))
    rows.append((user_ids[20], second, 0.91, dt.datetime(2018, 11, 26, 9)))  # the later re-score wins
    frame = pd.DataFrame(rows, columns=["user_id", "as_of_date", "churn_probability", "scored_at"])
    frame["risk_band"] = np.where(frame["churn_probability"] >= 0.5, "high",
                                  np.where(frame["churn_probability"] >= 0.2, "medium", "low"))
    frame["reason_1"] = "Fewer songs than typical"
    frame["reason_2"] = None
    frame["reason_3"] = None
    frame["model_run_id"] = "run-hand-made"
    return frame


def expected_customers(users: pd.DataFrame, daily: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    out = users.set_index("user_id").copy()
    dates = pd.to_datetime(daily["activity_date"])
    recent = daily[dates > dates.max() - pd.Timedelta(days=7)]
    totals = daily.groupby("user_id")[["thumbs_down_events", "advert_events"]].sum()
    out["songs_7d"] = recent.groupby("user_id")["song_events"].sum().reindex(out.index).fillna(0)
    songs = out["songs"].where(out["songs"] > 0)
    out["songs_per_active_day"] = out["songs"] / out["active_days"].where(out["active_days"] > 0)
    out["thumbs_down_per_100_songs"] = 100 * totals["thumbs_down_events"].reindex(out.index) / songs
    out["adverts_per_100_songs"] = 100 * totals["advert_events"].reindex(out.index) / songs
    start = np.minimum(out["registered_at"].fillna(out["first_event_at"]), out["first_event_at"])
    out["tenure_days"] = (out["last_event_at"].dt.normalize() - start.dt.normalize()).dt.days
    out["days_since_last_event"] = (out["last_event_at"].max().normalize()
                                    - out["last_event_at"].dt.normalize()).dt.days
    latest = scores.sort_values(["as_of_date", "scored_at"]).groupby("user_id").tail(1).set_index("user_id")
    out["scored_as_of_date"] = latest["as_of_date"]
    out["churn_probability"] = latest["churn_probability"]
    out["is_current_score"] = latest["as_of_date"] == scores["as_of_date"].max()
    for as_of, group in scores.groupby("as_of_date"):
        population = out.loc[group["user_id"].unique()]
        scored_then = out["scored_as_of_date"] == as_of
        out.loc[scored_then, "median_population_size"] = len(population)
        for metric in COMPARED:
            out.loc[scored_then, f"median_{metric}"] = population[metric].median()
    for metric in COMPARED:
        median = out[f"median_{metric}"]
        out[f"{metric}_vs_median"] = out[metric] / median.where(median != 0)
    return out


@pytest.fixture(scope="module")
def customers_with_scores(built_lakehouse, spark):
    """Build the mart over a hand-made churn_scores table; a churn_scores table the ML tests wrote
    is set aside meanwhile and put back afterwards, so the tests may run in any order."""
    existing = spark.catalog.tableExists("sparkify.churn_scores")
    if existing:
        spark.sql("alter table sparkify.churn_scores rename to sparkify.churn_scores_set_aside")
    users = spark.table("sparkify.users").toPandas()
    scores = hand_made_scores(sorted(users["user_id"]))
    schema = ("user_id string, as_of_date date, churn_probability double, scored_at timestamp, risk_band string, "
              "reason_1 string, reason_2 string, reason_3 string, model_run_id string")
    rows = [(r.user_id, r.as_of_date, float(r.churn_probability), r.scored_at.to_pydatetime(), r.risk_band,
             r.reason_1, None, None, r.model_run_id) for r in scores.itertuples(index=False)]
    spark.createDataFrame(rows, schema).write.saveAsTable("sparkify.churn_scores")
    try:
        dbt("build", "--select", "customers")  # the mart and every test in _customers.yml
        mart = spark.table("sparkify.customers").toPandas()
    finally:
        spark.sql("drop table if exists sparkify.churn_scores")
        if existing:
            spark.sql("alter table sparkify.churn_scores_set_aside rename to sparkify.churn_scores")
    daily = spark.table("sparkify.daily_activity").toPandas()
    return mart.set_index("user_id"), expected_customers(users, daily, scores), scores


def test_customers_mart_has_one_row_per_user_with_its_latest_score(customers_with_scores):
    mart, expected, scores = customers_with_scores
    assert sorted(mart.index) == sorted(expected.index)
    scored = expected["scored_as_of_date"].notna().to_numpy()
    assert mart["scored_as_of_date"].notna().sum() == scored.sum() == scores["user_id"].nunique()
    assert mart.loc[expected.index[scored], "churn_probability"].tolist() == pytest.approx(
        expected.loc[scored, "churn_probability"].tolist())
    rescored = scores["user_id"].iloc[-1]  # the last hand-made row is the later re-score
    assert mart.loc[rescored, "churn_probability"] == pytest.approx(0.91)
    assert (mart.loc[expected.index[scored], "is_current_score"].astype(bool)
            == expected.loc[scored, "is_current_score"].astype(bool)).all()
    assert mart.loc[expected.index[~scored], "churn_probability"].isna().all()


def test_customers_mart_medians_are_those_of_the_population_scored_at_the_same_as_of(customers_with_scores):
    mart, expected, _ = customers_with_scores
    scored = expected.index[expected["scored_as_of_date"].notna()]
    # two scoring dates, so two different sets of medians
    assert mart.loc[scored, "median_songs_7d"].nunique() == 2
    for metric in COMPARED:
        for column in (f"median_{metric}", f"{metric}_vs_median"):
            assert mart.loc[scored, column].astype(float).tolist() == pytest.approx(
                expected.loc[scored, column].astype(float).tolist(), nan_ok=True), column
    assert mart.loc[scored, "median_population_size"].tolist() == expected.loc[scored, "median_population_size"].tolist()
    never = expected.index[expected["scored_as_of_date"].isna()]
    assert mart.loc[never, "median_active_days"].isna().all()


def test_customers_mart_activity_and_tenure_match_pandas(customers_with_scores):
    mart, expected, _ = customers_with_scores
    users = expected.index
    for column in ("tenure_days", "days_since_last_event", "songs_7d", "songs_per_active_day",
                   "thumbs_down_per_100_songs", "adverts_per_100_songs"):
        assert mart.loc[users, column].astype(float).tolist() == pytest.approx(
            expected.loc[users, column].astype(float).tolist(), nan_ok=True), column
