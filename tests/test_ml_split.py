"""Time-based split: the dates it picks and the no-leakage property."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from models_ml.errors import UsageError
from models_ml.split import random_user_split, rows_on, time_split
from test_ml_fixtures import ml_spark  # noqa: F401

D = dt.date
WEEKLY = [D(2018, 10, 8) + dt.timedelta(weeks=i) for i in range(7)]  # es_small's complete as_of dates


def test_split_dates_on_es_small_calendar():
    s = time_split(WEEKLY, horizon_days=14, n_folds=3)
    assert s.test == D(2018, 11, 19)
    assert [f.validation for f in s.folds] == [D(2018, 10, 22), D(2018, 10, 29), D(2018, 11, 5)]
    assert [f.train for f in s.folds] == [
        (D(2018, 10, 8),),
        (D(2018, 10, 8), D(2018, 10, 15)),
        (D(2018, 10, 8), D(2018, 10, 15), D(2018, 10, 22)),
    ]
    assert s.train == (D(2018, 10, 8), D(2018, 10, 15), D(2018, 10, 22))
    assert "test 2018-11-19" in s.describe()


def test_quick_split_keeps_only_the_last_fold():
    s = time_split(WEEKLY, horizon_days=14, n_folds=1)
    assert len(s.folds) == 1 and s.folds[0].validation == D(2018, 11, 5)


@pytest.mark.parametrize("seed", range(20))
def test_no_label_window_reaches_a_later_stage(seed):
    """Random calendars: train labels end by validation, validation labels end by test."""
    rng = random.Random(seed)
    dates = sorted(rng.sample([D(2018, 1, 1) + dt.timedelta(days=i) for i in range(200)], rng.randint(5, 25)))
    horizon = rng.choice([7, 14, 28])
    try:
        s = time_split(dates, horizon_days=horizon, n_folds=3)
    except UsageError:
        assert not [d for d in dates if any(v + dt.timedelta(horizon) <= dates[-1] and d + dt.timedelta(horizon) <= v
                                            for v in dates)]
        return
    h = dt.timedelta(days=horizon)
    assert s.test == max(dates)
    for fold in s.folds:
        assert max(fold.train) + h <= fold.validation
        assert fold.validation + h <= s.test
    assert s.test not in {d for f in s.folds for d in f.train}


def test_too_few_dates_is_a_clear_error():
    with pytest.raises(UsageError, match="two 14-day horizons"):
        time_split([D(2018, 10, 8), D(2018, 10, 15)], horizon_days=14)
    with pytest.raises(UsageError, match="no as_of date"):
        time_split([], horizon_days=14)


@pytest.mark.spark
def test_test_rows_are_later_than_training_rows(ml_spark):
    rows = [(f"u{u}", d, 0.0) for u in range(3) for d in WEEKLY]
    df = ml_spark.createDataFrame(rows, "user_id string, as_of_date date, churned_within_horizon double")
    s = time_split(WEEKLY, horizon_days=14, n_folds=2)
    train = rows_on(df, s.train).toPandas()
    test = rows_on(df, [s.test]).toPandas()
    assert len(train) == 9 and len(test) == 3
    assert train["as_of_date"].max() + dt.timedelta(days=14) <= s.validation[-1]
    assert test["as_of_date"].min() > train["as_of_date"].max() + dt.timedelta(days=14)


@pytest.mark.spark
def test_lifetime_split_is_by_user_and_reproducible(ml_spark):
    df = ml_spark.createDataFrame([(f"u{i}", D(2018, 12, 1)) for i in range(500)], "user_id string, as_of_date date")
    a = random_user_split(df, seed=7).toPandas().set_index("user_id")["part"]
    b = random_user_split(df, seed=7).toPandas().set_index("user_id")["part"]
    assert (a == b).all()
    shares = a.value_counts(normalize=True)
    assert 0.5 < shares["train"] < 0.7 and 0.12 < shares["test"] < 0.28
