"""A JVM-free copy of a fitted pipeline, so the dashboard's what-if form scores without Spark.

`export` reads the fitted stages once at training time (tree nodes through py4j) into plain
JSON; `raw_scores` evaluates it with numpy and matches the pipeline's raw score to ~1e-9
(tests/test_ml_portable.py checks every model type against Spark).
"""

from __future__ import annotations

import math

import numpy as np
from pyspark.ml import PipelineModel

from models_ml.calibration import logit


def _tree(java_root, leaf_value) -> dict[str, list]:
    """Flatten a tree into parallel arrays; `feature` is -1 at a leaf."""
    out: dict[str, list] = {"feature": [], "threshold": [], "left": [], "right": [], "value": []}

    def visit(node) -> int:
        index = len(out["feature"])
        for key in out:
            out[key].append(-1 if key in ("feature", "left", "right") else 0.0)
        if node.getClass().getSimpleName() == "InternalNode":
            split = node.split()
            if split.getClass().getSimpleName() != "ContinuousSplit":
                raise ValueError("only continuous splits can be exported")
            out["feature"][index] = int(split.featureIndex())
            out["threshold"][index] = float(split.threshold())
            out["left"][index] = visit(node.leftChild())
            out["right"][index] = visit(node.rightChild())
        else:
            out["value"][index] = float(leaf_value(node))
        return index

    visit(java_root)
    return out


def _forest_leaf(node) -> float:
    stats = list(node.impurityStats().stats())
    total = sum(stats)
    return stats[1] / total if total else math.nan


def export(fitted: PipelineModel, model: str) -> dict:
    """Imputer medians, scaler moments and the classifier's parameters, as plain numbers."""
    imputer = fitted.stages[0]
    inputs = list(imputer.getInputCols())
    surrogates = imputer.surrogateDF.collect()[0].asDict()
    out: dict = {"model": model, "inputs": inputs, "medians": [float(surrogates[c]) for c in inputs],
                 "scaler": None}
    if len(fitted.stages) == 4:
        scaler = fitted.stages[2]
        out["scaler"] = {"mean": scaler.mean.toArray().tolist(), "std": scaler.std.toArray().tolist()}
    classifier = fitted.stages[-1]
    if model == "logreg":
        out["linear"] = {"coef": classifier.coefficients.toArray().tolist(),
                         "intercept": float(classifier.intercept)}
    elif model == "rf":
        out["trees"] = [_tree(t._java_obj.rootNode(), _forest_leaf) for t in classifier.trees]
    elif model == "gbt":
        out["trees"] = [_tree(t._java_obj.rootNode(), lambda n: n.prediction()) for t in classifier.trees]
        out["tree_weights"] = list(classifier.treeWeights)
    return out


def _tree_predict(tree: dict, x: np.ndarray) -> np.ndarray:
    feature = np.asarray(tree["feature"])
    threshold, value = np.asarray(tree["threshold"]), np.asarray(tree["value"])
    left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
    node = np.zeros(len(x), dtype=int)
    while True:
        internal = feature[node] >= 0
        if not internal.any():
            return value[node]
        rows = np.flatnonzero(internal)
        goes_left = x[rows, feature[node[rows]]] <= threshold[node[rows]]
        node[rows] = np.where(goes_left, left[node[rows]], right[node[rows]])


def prepare(portable: dict, x: np.ndarray) -> np.ndarray:
    """Impute NaN with the training medians, then scale like the pipeline (std 0 -> 0)."""
    x = np.array(x, dtype=float, copy=True)
    medians = np.asarray(portable["medians"])
    missing = np.isnan(x)
    x[missing] = np.broadcast_to(medians, x.shape)[missing]
    if portable["scaler"]:
        mean, std = np.asarray(portable["scaler"]["mean"]), np.asarray(portable["scaler"]["std"])
        x = np.where(std > 0, (x - mean) / np.where(std > 0, std, 1.0), 0.0)
    return x


def raw_scores(portable: dict, x: np.ndarray) -> np.ndarray:
    """The calibration input for rows `x` (columns in `portable['inputs']` order, NaN = missing)."""
    x = prepare(portable, np.atleast_2d(x))
    model = portable["model"]
    if model == "logreg":
        margin = x @ np.asarray(portable["linear"]["coef"]) + portable["linear"]["intercept"]
        return logit(1 / (1 + np.exp(-margin)))
    if model == "rf":
        votes = np.stack([_tree_predict(t, x) for t in portable["trees"]])
        return logit(np.nanmean(votes, axis=0))
    margin = sum(w * _tree_predict(t, x) for t, w in zip(portable["trees"], portable["tree_weights"]))
    return logit(1 / (1 + np.exp(-2 * margin)))
