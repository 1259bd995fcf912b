"""Reason codes: the sentences, Spark and Python agreeing, and the perturbation ranking."""

from __future__ import annotations

import numpy as np
import pytest

from models_ml.reasons import collect_reasons, reason_text, reason_text_col, top_reasons, with_median_variants
from test_ml_fixtures import ml_spark  # noqa: F401

CASES = [
    ("thumbs_down_per_song_28d", 0.12, 0.04, "3× more thumbs down per song than typical (0.12 vs 0.04)"),
    ("songs_14d", 412.0, 180.0, "2.3× more songs played in the last 14 days than typical (412 vs 180)"),
    ("songs_14d", 200.0, 180.0, "more songs played in the last 14 days than typical (200 vs 180)"),
    ("friends_added_28d", 0.0, 2.0, "no friends added in the last 28 days (typical 2)"),
    ("active_days_28d", 3.0, 12.0, "4× fewer active days in the last 28 days than typical (3 vs 12)"),
    ("active_days_28d", 10.0, 12.0, "fewer active days in the last 28 days than typical (10 vs 12)"),
    ("days_since_last_activity", 9.25, 1.5, "last active 9.3 days before this snapshot (typical 1.5)"),
    ("tenure_days", 20.0, 85.0, "customer for only 20 days (typical 85)"),
    ("is_paid", 0.0, 1.0, "on the free tier (typical: paid)"),
    ("is_paid", 1.0, 0.0, "on the paid tier (typical: free)"),
    ("active_days_change_7d", -3.0, 0.0, "3 fewer active days than the week before (typical change 0)"),
    ("error_pages_28d", 25.0, 1.0, "25× more errors in the last 28 days than typical (25 vs 1)"),
    ("some_new_metric", 5.0, 1.0, "5× more some new metric than typical (5 vs 1)"),
]


@pytest.mark.parametrize("feature,value,median,expected", CASES)
def test_reason_sentence(feature, value, median, expected):
    assert reason_text(feature, value, median) == expected


@pytest.mark.spark
def test_spark_sentences_match_python(ml_spark):
    from pyspark.sql import functions as F

    df = ml_spark.createDataFrame([(f, v, m) for f, v, m, _ in CASES], "f string, v double, m double")
    features = sorted({f for f, *_ in CASES})
    got = [r[0] for r in df.select(reason_text_col(F.col("f"), F.col("v"), F.col("m"), features)).collect()]
    assert got == [expected for *_, expected in CASES]


def test_top_reasons_keep_only_positive_pushes_largest_first():
    pushes = {"a": 0.02, "b": -0.01, "c": 0.05, "d": 0.0, "e": 0.01, "f": 0.03}
    values = {k: 1.0 for k in pushes}
    medians = {k: 0.5 for k in pushes}
    got = top_reasons(pushes, values, medians)
    assert [r["feature"] for r in got] == ["c", "f", "a"]


@pytest.mark.spark
def test_perturbation_reasons_on_a_known_linear_score(ml_spark):
    """probability = sigmoid(x1 + 2*x2 - x3): pushes are computable by hand."""
    from pyspark.sql import functions as F

    medians = {"x1": 0.0, "x2": 0.0, "x3": 0.0}
    rows = [("u1", 1.0, 0.5, -2.0), ("u2", -1.0, -1.0, 1.0), ("u3", 0.0, 0.0, 0.0)]
    df = ml_spark.createDataFrame(rows, "user_id string, x1 double, x2 double, x3 double")
    variants = with_median_variants(df, ["x1", "x2", "x3"], medians)
    scored = variants.withColumn("probability", 1 / (1 + F.exp(-(F.col("x1") + 2 * F.col("x2") - F.col("x3")))))
    out = {r["user_id"]: r for r in collect_reasons(scored, ["user_id"], ["x1", "x2", "x3"], medians).collect()}

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    # u1: z = 1 + 1 + 2 = 4; without x1: 3, without x2: 3, without x3: 2 -> x3 first, then x1, x2 (tie by name)
    assert out["u1"]["churn_probability"] == pytest.approx(sigmoid(4))
    assert [r["feature"] for r in out["u1"]["reasons"]] == ["x3", "x1", "x2"]
    assert out["u1"]["reasons"][0]["value"] == -2.0 and out["u1"]["reasons"][0]["median"] == 0.0
    # u2: z = -1 - 2 - 1 = -4: every feature pulls down -> no reasons; u3 sits at the median
    assert list(out["u2"]["reasons"]) == [] and list(out["u3"]["reasons"]) == []
