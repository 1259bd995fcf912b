"""Metrics on (label, score) arrays. Test sets hold one row per user, so numpy is enough and
the numbers do not depend on Spark's evaluator conventions (Spark's `f1` is weighted F1)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

TOP_SHARE = 0.10


def _sorted_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest first."""
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last_of_group = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[last_of_group]
    fps = (last_of_group + 1) - tps
    return tps, fps, s[last_of_group]


def average_precision(y, s) -> float:
    """Area under the PR curve as the mean precision at each recall step (ties grouped)."""
    y, s = np.asarray(y, float), np.asarray(s, float)
    if y.sum() == 0:
        return float("nan")
    tps, fps, _ = _sorted_counts(y, s)
    precision = tps / (tps + fps)
    recall_step = np.diff(np.r_[0.0, tps]) / y.sum()
    return float(np.sum(recall_step * precision))


def roc_auc(y, s) -> float:
    """Probability that a random churner outranks a random non-churner (ties count half)."""
    y, s = np.asarray(y, float), np.asarray(s, float)
    pos, neg = y.sum(), len(y) - y.sum()
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()  # ties share their mean rank
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def pr_curve(y, s) -> dict[str, list[float]]:
    y, s = np.asarray(y, float), np.asarray(s, float)
    tps, fps, thresholds = _sorted_counts(y, s)
    precision = tps / (tps + fps)
    recall = tps / max(y.sum(), 1)
    return {"recall": [0.0, *recall.tolist()], "precision": [1.0, *precision.tolist()],
            "threshold": [None, *thresholds.tolist()]}


def roc_curve(y, s) -> dict[str, list[float]]:
    y, s = np.asarray(y, float), np.asarray(s, float)
    tps, fps, thresholds = _sorted_counts(y, s)
    return {"fpr": [0.0, *(fps / max(len(y) - y.sum(), 1)).tolist()],
            "tpr": [0.0, *(tps / max(y.sum(), 1)).tolist()],
            "threshold": [None, *thresholds.tolist()]}


def calibration_curve(y, p, bins: int = 10) -> dict[str, list[float]]:
    """Mean predicted vs observed churn rate in equal-count bins of the predicted probability."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    order = np.argsort(p, kind="mergesort")
    groups = [g for g in np.array_split(order, min(bins, len(p))) if len(g)]
    return {
        "predicted": [float(p[g].mean()) for g in groups],
        "observed": [float(y[g].mean()) for g in groups],
        "count": [int(len(g)) for g in groups],
    }


def precision_at_top(y, s, share: float = TOP_SHARE) -> float:
    """Churn rate among the `share` highest scores: what a retention team calling them would see.

    The k = ceil(share * n) slots go to the highest scores; when the cut falls inside a group of
    tied scores, each tied row gets an equal fraction of the remaining slots (fractional credit),
    so the figure never depends on row order."""
    y, s = np.asarray(y, float), np.asarray(s, float)
    if len(y) == 0:
        return float("nan")
    k = max(1, math.ceil(share * len(y)))
    order = np.argsort(-s, kind="mergesort")
    cutoff = s[order[k - 1]]
    above = s > cutoff
    tied = s == cutoff
    remaining = k - int(above.sum())
    credit = y[above].sum() + remaining * y[tied].mean()
    return float(credit / k)


def at_threshold(y, p, threshold: float) -> dict[str, float]:
    """Churn-class precision/recall/F1, plus weighted F1 and accuracy (the public projects' metrics)."""
    y = np.asarray(y, int)
    pred = (np.asarray(p, float) >= threshold).astype(int)
    out: dict[str, float] = {}
    f1s, supports = [], []
    for cls in (1, 0):
        tp = int(((pred == cls) & (y == cls)).sum())
        predicted, actual = int((pred == cls).sum()), int((y == cls).sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if cls == 1:
            out.update(precision=precision, recall=recall, f1=f1)
        f1s.append(f1)
        supports.append(actual)
    out["weighted_f1"] = float(np.dot(f1s, supports) / max(sum(supports), 1))
    out["accuracy"] = float((pred == y).mean()) if len(y) else float("nan")
    return out


def brier(y, p) -> float:
    y, p = np.asarray(y, float), np.asarray(p, float)
    return float(np.mean((p - y) ** 2))


def metrics(y, p, threshold: float) -> dict[str, float]:
    """Every test metric the model card and `model_runs` report, for calibrated probabilities p."""
    return {
        "auc_pr": average_precision(y, p),
        "roc_auc": roc_auc(y, p),
        **at_threshold(y, p, threshold),
        "precision_at_top10": precision_at_top(y, p),
        "brier": brier(y, p),
    }


def thin(curve: dict[str, list[float]], max_points: int = 200) -> dict[str, list[float]]:
    """Keep at most `max_points` evenly spaced points so curves.json stays small."""
    n = len(next(iter(curve.values())))
    if n <= max_points:
        return curve
    keep = np.unique(np.r_[np.linspace(0, n - 1, max_points).astype(int), n - 1])
    return {k: [v[i] for i in keep] for k, v in curve.items()}


def _user_resamples(users, reps: int, seed: int):
    """Row indices of `reps` bootstrap samples that draw whole users with replacement: a user's
    weekly rows are correlated, so resampling rows would understate the spread."""
    users = np.asarray(users).astype(str)
    codes, inverse = np.unique(users, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == i) for i in range(len(codes))]
    rng = np.random.default_rng(seed)
    for _ in range(reps):
        picked = rng.integers(0, len(codes), len(codes))
        yield np.concatenate([rows_of[i] for i in picked])


POOLED_METRICS = {
    "roc_auc": lambda y, p: roc_auc(y, p),
    "average_precision": lambda y, p: average_precision(y, p),
    "precision_top10": lambda y, p: precision_at_top(y, p),
    "brier": lambda y, p: brier(y, p),
}


def with_intervals(y, p, users, reps: int = 400, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Each of POOLED_METRICS with a bootstrap confidence interval grouped by user
    (`<name>_lo`, `<name>_hi`), plus rows, positives, prevalence and ap_lift."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    out: dict[str, float] = {"rows": int(len(y)), "positives": int(y.sum()),
                             "prevalence": float(y.mean()) if len(y) else float("nan")}
    draws: dict[str, list[float]] = {name: [] for name in POOLED_METRICS}
    for idx in _user_resamples(users, reps, seed):
        if 0 < y[idx].sum() < len(idx):
            for name, fn in POOLED_METRICS.items():
                draws[name].append(fn(y[idx], p[idx]))
    tail = (1 - level) / 2 * 100
    for name, fn in POOLED_METRICS.items():
        out[name] = fn(y, p)
        values = np.asarray(draws[name], float)
        values = values[np.isfinite(values)]
        lo, hi = (np.percentile(values, [tail, 100 - tail]) if len(values) > 1 else (np.nan, np.nan))
        out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
    out["ap_lift"] = out["average_precision"] / out["prevalence"] if out["prevalence"] else float("nan")
    return out


def paired_difference(y, a, b, users, metric=average_precision, reps: int = 400, seed: int = 0
                      ) -> tuple[float, float]:
    """metric(a) - metric(b) on the same rows, and its bootstrap standard error over the same
    user resamples for both: the paired comparison that model selection needs."""
    y, a, b = np.asarray(y, float), np.asarray(a, float), np.asarray(b, float)
    diffs = []
    for idx in _user_resamples(users, reps, seed):
        if 0 < y[idx].sum() < len(idx):
            diffs.append(metric(y[idx], a[idx]) - metric(y[idx], b[idx]))
    spread = float(np.std(diffs)) if len(diffs) > 1 else 0.0
    return float(metric(y, a) - metric(y, b)), spread
