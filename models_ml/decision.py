"""From calibrated probability to action: the decision threshold and the risk bands.

Threshold rule: the probability that maximises churn-class F1 on out-of-time scores (flag
p >= threshold); among equal F1 the higher threshold wins, so fewer customers are flagged.
Risk bands: `high` from the threshold (the customers the model would flag), `medium` from the
churn rate of those scores (above-average risk), `low` below it.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F

THRESHOLD_RULE = "max churn-class F1 on the rolling folds' out-of-time scores (flag p >= threshold; ties -> higher threshold)"
BANDS_RULE = "high: p >= decision threshold; medium: p >= the folds' churn rate; low: below"


def choose_threshold(y, p) -> float:
    """The candidate threshold (an observed probability) with the best F1 for the churn class."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    positives = y.sum()
    if positives == 0:
        raise ValueError("cannot choose a threshold without churners")
    order = np.argsort(-p, kind="mergesort")
    y_sorted, p_sorted = y[order], p[order]
    last_of_group = np.r_[np.nonzero(np.diff(p_sorted))[0], len(p_sorted) - 1]
    tp = np.cumsum(y_sorted)[last_of_group]
    flagged = last_of_group + 1
    f1 = 2 * tp / (flagged + positives)
    best = np.flatnonzero(np.isclose(f1, f1.max(), rtol=0, atol=1e-12))[0]
    return float(p_sorted[last_of_group][best])


def risk_bands(threshold: float, base_rate: float) -> dict[str, float]:
    """Cut-offs on calibrated probability; `medium` stays below `high` even if the rate is high."""
    medium = base_rate if base_rate < threshold else threshold / 2
    return {"high": float(threshold), "medium": float(medium)}


def band(p: float, bands: dict[str, float]) -> str:
    return "high" if p >= bands["high"] else "medium" if p >= bands["medium"] else "low"


def band_col(p: Column, bands: dict[str, float]) -> Column:
    return (F.when(p >= F.lit(bands["high"]), "high")
            .when(p >= F.lit(bands["medium"]), "medium")
            .otherwise("low"))
