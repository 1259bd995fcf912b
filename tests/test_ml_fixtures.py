"""Shared helpers for the models_ml tests: the SparkSession and small synthetic frames.

`ml_spark` is the suite's shared `spark` fixture (tests/conftest.py) when there is one, else a
plain local session without Hive: the unit tests need no metastore.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def ml_spark(request):
    try:
        shared = request.getfixturevalue("spark")
    except pytest.FixtureLookupError:
        shared = None
    if shared is not None:
        yield shared
    else:
        from pyspark.sql import SparkSession

        session = (SparkSession.builder.master("local[2]").appName("models_ml-tests")
                   .config("spark.sql.shuffle.partitions", "2")
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.ui.enabled", "false").getOrCreate())
        yield session
        session.stop()


FEATURES = ["songs_14d", "days_since_last_activity", "thumbs_down_per_song_28d", "is_paid"]


def synthetic_rows(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Users whose churn odds rise with songs and thumbs down; a few missing values."""
    rng = np.random.default_rng(seed)
    songs = rng.gamma(2.0, 60.0, n).round()
    days = rng.exponential(3.0, n)
    thumbs = rng.beta(2, 40, n)
    paid = rng.integers(0, 2, n).astype(float)
    logit = -3.5 + 0.012 * songs + 20 * thumbs - 0.1 * days
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    thumbs[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({
        "user_id": [f"u{i}" for i in range(n)],
        "as_of_date": pd.Timestamp("2018-11-19").date(),
        "churned_within_horizon": y,
        "songs_14d": songs, "days_since_last_activity": days,
        "thumbs_down_per_song_28d": thumbs, "is_paid": paid,
    })


def to_spark(spark, pdf: pd.DataFrame):
    """pandas -> Spark with NaN as null, as the mart has it."""
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
               for row in pdf.to_dict("records")]
    schema = ("user_id string, as_of_date date, churned_within_horizon double, " +
              ", ".join(f"{f} double" for f in FEATURES))
    return spark.createDataFrame(records, schema)
