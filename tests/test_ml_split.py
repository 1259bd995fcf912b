"""Rolling-origin folds: the dates they pick and the no-leakage property; the lifetime split."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from models_ml.errors import UsageError
from models_ml.split import random_user_split, rolling_folds, rows_on
from test_ml_fixtures import ml_spark  # noqa: F401

D = dt.date
WEEKLY = [D(2018, 10, 8) + dt.timedelta(weeks=i) for i in range(7)]  # es_small's complete as_of dates


def test_rolling_folds_on_es_small_calendar():
    folds = rolling_folds(WEEKLY, horizon_days=14)
    # a 14-day horizon: a date trains the folds scored two or more weeks after it
    assert [f.scored for f in folds] == WEEKLY[2:]
    assert [f.train for f in folds] == [tuple(WEEKLY[:i - 1]) for i in range(2, 7)]
    assert folds[-1].describe() == "train 2018-10-08..2018-11-05 (5 as_of) -> score 2018-11-19"


@pytest.mark.parametrize("seed", range(20))
def test_no_fold_trains_on_a_label_window_that_reaches_its_scored_date(seed):
    """Random calendars and horizons: every training date's horizon ends by the scored date, every
    eligible date is used, and every date with earlier eligible data is scored."""
    rng = random.Random(seed)
    dates = sorted(rng.sample([D(2018, 1, 1) + dt.timedelta(days=i) for i in range(200)], rng.randint(5, 25)))
    horizon = rng.choice([7, 14, 28])
    h = dt.timedelta(days=horizon)
    folds = rolling_folds(dates, horizon_days=horizon)
    expected_scored = [v for v in dates if any(d + h <= v for d in dates)]
    assert [f.scored for f in folds] == expected_scored
    for fold in folds:
        assert fold.scored not in fold.train
        assert all(d + h <= fold.scored for d in fold.train)
        assert set(fold.train) == {d for d in dates if d + h <= fold.scored}


def test_too_few_dates_is_a_clear_error_saying_how_many():
    with pytest.raises(UsageError, match="at least 3 as_of dates with earlier training data.*about 5 weekly"):
        rolling_folds(WEEKLY[:4], horizon_days=14, min_folds=3)
    with pytest.raises(UsageError, match="has 0"):
        rolling_folds([], horizon_days=14, min_folds=1)
    assert len(rolling_folds(WEEKLY[:5], horizon_days=14, min_folds=3)) == 3


@pytest.mark.spark
def test_test_rows_are_later_than_training_rows(ml_spark):
    rows = [(f"u{u}", d, 0.0) for u in range(3) for d in WEEKLY]
    df = ml_spark.createDataFrame(rows, "user_id string, as_of_date date, churned_within_horizon double")
    fold = rolling_folds(WEEKLY, horizon_days=14)[-1]
    train = rows_on(df, fold.train).toPandas()
    test = rows_on(df, [fold.scored]).toPandas()
    assert len(train) == 15 and len(test) == 3
    assert train["as_of_date"].max() + dt.timedelta(days=14) <= test["as_of_date"].min()


@pytest.mark.spark
def test_lifetime_split_is_by_user_and_reproducible(ml_spark):
    df = ml_spark.createDataFrame([(f"u{i}", D(2018, 12, 1)) for i in range(500)], "user_id string, as_of_date date")
    a = random_user_split(df, seed=7).toPandas().set_index("user_id")["part"]
    b = random_user_split(df, seed=7).toPandas().set_index("user_id")["part"]
    assert (a == b).all()
    shares = a.value_counts(normalize=True)
    assert 0.5 < shares["train"] < 0.7 and 0.12 < shares["test"] < 0.28
