"""The candidate models: Spark ML pipelines (imputer, assembler, scaler where needed, classifier)
and their small parameter grids, and the one-feature baseline rule. The raw score of each is what
calibration maps to a probability."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import (
    GBTClassificationModel,
    GBTClassifier,
    LogisticRegression,
    RandomForestClassificationModel,
    RandomForestClassifier,
)
from pyspark.ml.feature import Imputer, StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column
from pyspark.sql import functions as F

from models_ml.calibration import logit_col
from models_ml.errors import UsageError
from models_ml.features import LABEL

MODELS = ("baseline", "logreg", "rf", "gbt")
DESCRIPTIONS = {
    "baseline": "one-feature rule: the single feature that best ranks churners on the training dates",
    "logreg": "LogisticRegression with L2/elastic-net regularisation on scaled features",
    "rf": "RandomForestClassifier",
    "gbt": "GBTClassifier (gradient-boosted trees)",
}
SCALED = {"logreg"}
# Scored by a rule on the collected rows, not fitted with Spark: the baseline is one feature, oriented.
RULES = {"baseline"}
# Fitted with Spark, but their fold scores come from the exported model (models_ml/portable.py) on the collected
# rows: a linear model exports in a few gateway calls, and scoring ~400 rows in numpy replaces a Spark transform
# and collect per fitted grid point (20 of them per run).
SCORED_IN_PYTHON = {"logreg"}
WEIGHT = "class_weight"

# Small grids: the pooled validation folds hold tens of churners, so finer grids only fit noise.
# Strong L2 suits a handful of correlated volume features; the trees get large leaves. The booster takes
# 15 rounds at step 0.2 rather than 30 at 0.1 (the same shrinkage budget): its rounds are sequential Spark
# jobs, and out of time it ranks as well (selection / test AUC-PR 0.299 / 0.213 against 0.279 / 0.200 on
# es_small, 0.065 / 0.143 against 0.062 / 0.146 on es_medium) in 3.5 s less training.
GRIDS: dict[str, list[dict]] = {
    "baseline": [{}],
    "logreg": [{"regParam": r, "elasticNetParam": 0.0} for r in (0.3, 1.0, 3.0, 10.0)],
    "rf": [{"numTrees": 100, "maxDepth": 4, "minInstancesPerNode": 25}],
    "gbt": [{"maxIter": 15, "maxDepth": 2, "stepSize": 0.2, "minInstancesPerNode": 25}],
}
QUICK_GRIDS: dict[str, list[dict]] = {
    "baseline": [{}],
    "logreg": [{"regParam": 1.0, "elasticNetParam": 0.0}],
    "rf": [{"numTrees": 30, "maxDepth": 4, "minInstancesPerNode": 25}],
    "gbt": [{"maxIter": 10, "maxDepth": 2, "stepSize": 0.2, "minInstancesPerNode": 25}],
}


# PySpark's `Params.params` reads every attribute of a model that is not a property, and a fitted ensemble's
# `trees` is a `cached_property`: so wrapping each fitted forest in Python built a Python model for every one of
# its trees, through the gateway (18,500 array reads and 9,000 calls per training run on es_small, three in four
# of all the gateway's traffic). These ensembles expose `trees` as a plain property, built only when read.
class _ForestModel(RandomForestClassificationModel):
    trees = property(RandomForestClassificationModel.trees.func)


class _BoostedModel(GBTClassificationModel):
    trees = property(GBTClassificationModel.trees.func)


class _Forest(RandomForestClassifier):
    def _create_model(self, java_model):
        return _ForestModel(java_model)


class _Boosted(GBTClassifier):
    def _create_model(self, java_model):
        return _BoostedModel(java_model)


@dataclass(frozen=True)
class Candidate:
    model: str
    params: dict

    @property
    def params_json(self) -> str:
        return json.dumps(self.params, sort_keys=True)


def parse_models(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        raise UsageError(f"unknown model name(s) {', '.join(unknown) or '(none)'}: "
                         f"choose from {','.join(MODELS)}")
    return list(dict.fromkeys(names))


def grid(model: str, quick: bool) -> list[Candidate]:
    return [Candidate(model, dict(p)) for p in (QUICK_GRIDS if quick else GRIDS)[model]]


def _classifier(candidate: Candidate, seed: int):
    common = {"featuresCol": "features", "labelCol": LABEL, "weightCol": WEIGHT}
    p = {k: v for k, v in candidate.params.items() if k not in ("feature", "direction")}
    if candidate.model == "logreg":
        return LogisticRegression(maxIter=50, standardization=False, **common, **p)
    if candidate.model == "rf":
        return _Forest(seed=seed, featureSubsetStrategy="sqrt", **common, **p)
    if candidate.model == "gbt":
        return _Boosted(seed=seed, subsamplingRate=0.8, **common, **p)
    raise UsageError(f"unknown model {candidate.model}")


def model_features(candidate: Candidate, features: list[str]) -> list[str]:
    """The baseline uses one feature; every other model uses the whole set."""
    return [candidate.params["feature"]] if candidate.model == "baseline" else list(features)


def preprocessing(inputs: list[str], scaled: bool) -> Pipeline:
    """Imputer (training medians) -> assembler -> scaler (for the linear models)."""
    imputed = [f"{name}__imputed" for name in inputs]
    stages = [
        Imputer(strategy="median", inputCols=inputs, outputCols=imputed),
        VectorAssembler(inputCols=imputed, outputCol="features_raw" if scaled else "features"),
    ]
    if scaled:
        stages.append(StandardScaler(inputCol="features_raw", outputCol="features", withMean=True, withStd=True))
    return Pipeline(stages=stages)


def build_pipeline(candidate: Candidate, features: list[str], seed: int) -> Pipeline:
    """The whole pipeline, unfitted: preprocessing then the classifier."""
    prep = preprocessing(model_features(candidate, features), candidate.model in SCALED)
    return Pipeline(stages=[*prep.getStages(), _classifier(candidate, seed)])


def fit_on_prepared(candidate: Candidate, prep: PipelineModel, prepared, seed: int) -> PipelineModel:
    """Fit only the classifier on already preprocessed rows and join it to the fitted
    preprocessing: the grid shares one imputer/scaler fit per fold instead of one per point."""
    return PipelineModel(stages=[*prep.stages, _classifier(candidate, seed).fit(prepared)])


def raw_score_col(model: str) -> Column:
    """Log-odds of the model's churn probability: the input of calibration."""
    return logit_col(vector_to_array(F.col("probability"))[1])


def feature_importance(fitted: PipelineModel, candidate: Candidate, features: list[str]) -> dict[str, float]:
    """Share of importance per feature: |coefficient| on scaled features, or the trees' gain."""
    inputs = model_features(candidate, features)
    classifier = fitted.stages[-1]
    if candidate.model in ("rf", "gbt"):
        values = np.asarray(classifier.featureImportances.toArray(), float)
    else:
        values = np.abs(np.asarray(classifier.coefficients.toArray(), float))
    total = values.sum()
    shares = values / total if total > 0 else values
    return {name: float(shares[i]) for i, name in enumerate(inputs)}


def baseline_scores(params: dict, train, rows) -> np.ndarray:
    """The baseline rule's raw score of `rows` (pandas): its feature, missing values as the training median,
    standardised on the training rows and negated when lower values mean churn. Calibration maps it to a
    probability like any model's log-odds (both calibrations are blind to a monotone rescaling)."""
    name = params["feature"]
    reference = train[name].astype(float)
    median = reference.median()
    reference = reference.fillna(median)
    spread = reference.std(ddof=0)
    x = rows[name].astype(float).fillna(median).to_numpy()
    z = (x - reference.mean()) / spread if spread > 0 else np.zeros(len(x))
    return z if params["direction"] == "higher" else -z


def choose_baseline_feature(train, features: list[str]) -> dict:
    """The single feature (and direction) with the best average precision on training rows."""
    from models_ml.evaluate import average_precision

    y = train[LABEL].to_numpy(float)
    best = None
    for name in features:
        x = train[name].astype(float)
        x = x.fillna(x.median()).to_numpy()
        for sign in (1, -1):
            ap = average_precision(y, sign * x)
            if best is None or ap > best[0]:
                best = (ap, name, sign)
    return {"feature": best[1], "direction": "higher" if best[2] > 0 else "lower"}
