"""Turn a model's raw score into a probability that matches observed churn rates.

Class weights and forests distort probabilities, so every model's raw score (its log-odds) is
mapped to a probability fitted on out-of-time scores of the rolling folds. Platt
scaling (two parameters) is the default: the folds hold only tens of churners, too few for
isotonic regression's step function, which is used only from ISOTONIC_MIN_POSITIVES on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F

ISOTONIC_MIN_POSITIVES = 200
LOGIT_CLIP = 1e-6


def sigmoid(z) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow for large |z|."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, float)))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(p / (1 - p))


def logit_col(p: Column) -> Column:
    clipped = F.least(F.greatest(p, F.lit(LOGIT_CLIP)), F.lit(1 - LOGIT_CLIP))
    return F.log(clipped / (F.lit(1.0) - clipped))


@dataclass(frozen=True)
class Calibrator:
    """`platt`: p = 1 / (1 + exp(-(a*s + b))); `isotonic`: linear interpolation through knots."""

    kind: str
    a: float = 1.0
    b: float = 0.0
    knots_x: tuple[float, ...] = field(default=())
    knots_y: tuple[float, ...] = field(default=())

    def describe(self) -> str:
        if self.kind == "platt":
            return f"platt(a={self.a:.4g}, b={self.b:.4g})"
        return f"isotonic({len(self.knots_x)} knots)"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "a": self.a, "b": self.b,
                "knots_x": list(self.knots_x), "knots_y": list(self.knots_y)}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibrator":
        return cls(d["kind"], d.get("a", 1.0), d.get("b", 0.0),
                   tuple(d.get("knots_x", ())), tuple(d.get("knots_y", ())))

    def apply(self, s) -> np.ndarray:
        s = np.asarray(s, float)
        if self.kind == "platt":
            return sigmoid(self.a * s + self.b)
        return np.interp(s, self.knots_x, self.knots_y)

    def apply_col(self, s: Column) -> Column:
        if self.kind == "platt":
            return F.lit(1.0) / (F.lit(1.0) + F.exp(-(F.lit(self.a) * s + F.lit(self.b))))
        xs, ys = self.knots_x, self.knots_y
        out = F.when(s <= xs[0], F.lit(ys[0]))
        for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
            slope = (y1 - y0) / (x1 - x0) if x1 > x0 else 0.0
            out = out.when(s <= x1, F.lit(y0) + (s - F.lit(x0)) * F.lit(slope))
        return out.otherwise(F.lit(ys[-1]))


def fit_platt(s, y, max_iter: int = 100) -> Calibrator:
    """Platt (1999): logistic regression of the label on the score, with smoothed targets
    (n+ + 1)/(n+ + 2) and 1/(n- + 2) so a handful of churners cannot push p to 0 or 1."""
    s, y = np.asarray(s, float), np.asarray(y, float)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    a, b = 0.0, float(np.log((n_pos + 1) / (n_neg + 1)))
    for _ in range(max_iter):
        p = sigmoid(a * s + b)
        w = np.maximum(p * (1 - p), 1e-12)
        grad = np.array([np.dot(p - t, s), np.sum(p - t)])
        hess = np.array([[np.dot(w, s * s), np.dot(w, s)], [np.dot(w, s), np.sum(w)]])
        step = np.linalg.solve(hess + 1e-9 * np.eye(2), grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return Calibrator("platt", float(a), float(b))


def fit_isotonic(s, y) -> Calibrator:
    """Pool-adjacent-violators on scores sorted ascending; knots at each block's mean score."""
    s, y = np.asarray(s, float), np.asarray(y, float)
    order = np.argsort(s, kind="mergesort")
    blocks: list[list[float]] = []  # [sum_y, count, sum_s]
    for value, label in zip(s[order], y[order]):
        blocks.append([label, 1.0, value])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1] = [blocks[-1][0] + last[0], blocks[-1][1] + last[1], blocks[-1][2] + last[2]]
    xs = tuple(float(b[2] / b[1]) for b in blocks)
    ys = tuple(float(b[0] / b[1]) for b in blocks)
    return Calibrator("isotonic", knots_x=xs, knots_y=ys)


def fit(s, y) -> Calibrator:
    """Platt unless the scores come with enough churners for isotonic regression."""
    if np.asarray(y).sum() >= ISOTONIC_MIN_POSITIVES:
        return fit_isotonic(s, y)
    return fit_platt(s, y)
