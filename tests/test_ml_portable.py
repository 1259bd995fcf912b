"""The JVM-free copy scores exactly like the Spark pipeline, and what-if matches `score`."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from models_ml import calibration, decision, portable
from models_ml.artifacts import SavedModel
from models_ml.candidates import MODELS, RULES, SCORED_IN_PYTHON, WEIGHT, Candidate, build_pipeline, raw_score_col
from models_ml.features import LABEL
from models_ml.whatif import what_if
from test_ml_fixtures import FEATURES, ml_spark, synthetic_rows, to_spark  # noqa: F401

PARAMS = {
    "logreg": {"regParam": 0.1, "elasticNetParam": 0.0},
    "rf": {"numTrees": 8, "maxDepth": 3, "minInstancesPerNode": 5},
    "gbt": {"maxIter": 5, "maxDepth": 2, "stepSize": 0.3},
    "svc": {"regParam": 0.1},
}


@pytest.fixture(scope="module")
def training(ml_spark):
    pdf = synthetic_rows()
    df = to_spark(ml_spark, pdf)
    weighted = df.withColumn(WEIGHT, (df[LABEL] * 3 + 1).cast("double"))
    return pdf, weighted.cache()


def fitted(model, pdf, df):
    return build_pipeline(Candidate(model, PARAMS[model]), FEATURES, seed=1).fit(df)


@pytest.mark.spark
@pytest.mark.parametrize("model", sorted(set(MODELS) - RULES))
def test_numpy_copy_matches_spark_raw_score(training, model):
    pdf, df = training
    pipeline = fitted(model, pdf, df)
    spark_raw = np.array([r[0] for r in pipeline.transform(df).select(raw_score_col(model)).collect()])
    exported = portable.export(pipeline, model)
    x = pdf[exported["inputs"]].to_numpy(float)
    assert portable.raw_scores(exported, x) == pytest.approx(spark_raw, abs=1e-7)


@pytest.mark.spark
@pytest.mark.parametrize("model", sorted(SCORED_IN_PYTHON))
def test_fold_scores_in_python_equal_sparks(training, model):
    """Training scores these candidates' folds from the exported model: the same labels, scores and users, in
    the same order, as the Spark transform gives."""
    from models_ml.train import exported_scores, predict

    pdf, df = training
    pipeline = fitted(model, pdf, df)
    spark_y, spark_s, spark_users = predict(pipeline, df, model)
    y, s, users = exported_scores(portable.export(pipeline, model), pdf)
    assert list(users) == list(spark_users)
    assert y == pytest.approx(spark_y)
    assert s == pytest.approx(spark_s, abs=1e-7)


@pytest.mark.spark
def test_what_if_matches_score_for_the_same_customer(training, ml_spark):
    from pyspark.sql import functions as F

    from models_ml.score import score_frame

    pdf, df = training
    pipeline = fitted("logreg", pdf, df)
    medians = {f: float(pdf[f].median()) for f in FEATURES}
    cal = calibration.Calibrator("platt", 0.9, -0.4)
    saved = SavedModel(path=None, meta={
        "run_id": "r1", "model": "logreg", "features": FEATURES, "medians": medians,
        "calibrator": cal.to_dict(), "risk_bands": decision.risk_bands(0.3, 0.1),
        "portable": portable.export(pipeline, "logreg"),
    })
    users = ["u1", "u7", "u42"]
    rows = df.where(F.col("user_id").isin(users)).drop(WEIGHT)
    frame, used = score_frame(ml_spark, rows, pipeline, saved, dt.datetime(2018, 12, 1))
    scored = {r["user_id"]: r for r in frame.collect()}
    # reasons compare with the medians of the population scored together, missing values left out
    population = pdf.set_index("user_id").loc[users, FEATURES]
    assert used == pytest.approx({f: float(population[f].median()) for f in FEATURES})
    assert set(scored) == set(users)
    for user, row in scored.items():
        values = population.loc[user].to_dict()
        result = what_if(values, model=saved, reference=used)
        assert result.probability == pytest.approx(row["churn_probability"], abs=1e-9)
        assert result.risk_band == row["risk_band"]
        assert [r["text"] for r in result.reasons] == [r["text"] for r in row["reasons"]]
        assert row["reason_1"] == (row["reasons"][0]["text"] if row["reasons"] else None)


def test_what_if_fills_missing_features_with_medians_and_rejects_unknown_ones():
    exported = {"model": "logreg", "inputs": ["a", "b"], "medians": [1.0, 2.0], "scaler": None,
                "linear": {"coef": [1.0, -1.0], "intercept": 0.0}}
    saved = SavedModel(path=None, meta={
        "run_id": "r", "model": "logreg", "features": ["a", "b"], "medians": {"a": 1.0, "b": 2.0},
        "calibrator": calibration.Calibrator("platt", 1.0, 0.0).to_dict(),
        "risk_bands": {"high": 0.5, "medium": 0.2}, "portable": exported,
    })
    result = what_if({"a": 3.0}, model=saved)  # b -> median 2: z = 3 - 2 = 1
    assert result.probability == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert result.risk_band == "high" and result.features == {"a": 3.0, "b": 2.0}
    assert [r["feature"] for r in result.reasons] == ["a"]
    from models_ml.errors import UsageError

    with pytest.raises(UsageError, match="unknown feature"):
        what_if({"nope": 1.0}, model=saved)


def test_baseline_rule_is_its_feature_with_training_median_standardised_and_oriented():
    import pandas as pd

    from models_ml.candidates import baseline_scores

    train = pd.DataFrame({"songs": [1.0, 3.0, np.nan, 5.0]})  # median 3; filled: 1, 3, 3, 5
    rows = pd.DataFrame({"songs": [3.0, np.nan, 7.0]})
    mean, std = 3.0, np.sqrt(((1 - 3) ** 2 + 0 + 0 + (5 - 3) ** 2) / 4)  # population std of the filled rows
    higher = baseline_scores({"feature": "songs", "direction": "higher"}, train, rows)
    assert higher == pytest.approx([0.0, 0.0, (7 - mean) / std])
    lower = baseline_scores({"feature": "songs", "direction": "lower"}, train, rows)
    assert lower == pytest.approx([0.0, 0.0, -(7 - mean) / std])
    flat = baseline_scores({"feature": "songs", "direction": "higher"}, pd.DataFrame({"songs": [2.0, 2.0]}), rows)
    assert flat.tolist() == [0.0, 0.0, 0.0]  # no spread on the training rows: no ranking
