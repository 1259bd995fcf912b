"""Reason codes: the features that push a customer's churn probability up, in plain words.

A feature's push is the drop in probability when only that feature is set to the median of the
population scored at the same as_of. The three largest positive pushes become the reasons. How a
feature's sentence reads comes from the feature registry (`sparkify.features`): its kind and noun.
Scores are computed in numpy with the model's portable copy, the same code the what-if form runs,
so both always agree.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Callable

import numpy as np

from sparkify import features as registry

TOP_N = 3


def _describe(feature: str) -> tuple[str, str]:
    try:
        entry = registry.get(feature)
    except KeyError:  # a column a model was trained on that this registry no longer lists
        return "count", feature.replace("_", " ")
    return entry.reason, entry.noun


def _round(x: float, places: int) -> str:
    """Round half up, as people do."""
    quantum = Decimal(1).scaleb(-places)
    return str(Decimal(repr(float(x))).quantize(quantum, rounding=ROUND_HALF_UP))


def fmt(x: float) -> str:
    """Whole numbers plainly, 1 decimal from 1 up, and 2 significant digits below 1 (0.012, 0.5)."""
    x = float(x)
    if x == round(x) or abs(x) >= 10:
        return _round(x, 0)
    if abs(x) >= 1:
        return _round(x, 1)
    places = max(2, 1 - int(np.floor(np.log10(abs(x)))))
    return _round(x, places).rstrip("0").rstrip(".")


def fmt_ratio(r: float) -> str:
    """"3×" rather than "3.0×"; one decimal below 10, none above."""
    text = _round(r, 0) if r >= 10 else _round(r, 1)
    return text[:-2] if text.endswith(".0") else text


def reason_text(feature: str, value: float, median: float) -> str:
    """E.g. "3× more thumbs down per song in the last 28 days than typical (0.12 vs 0.04)"."""
    kind, noun = _describe(feature)
    v, m = float(value), float(median)
    if kind == "days_since":
        return f"last active {fmt(v)} days before this snapshot (typical {fmt(m)})"
    if kind == "tenure":
        return f"customer for {'only ' if v < m else ''}{fmt(v)} days (typical {fmt(m)})"
    if kind == "paid":
        return f"on the {'paid' if v >= 0.5 else 'free'} tier (typical: {'paid' if m >= 0.5 else 'free'})"
    if kind == "change":
        if v == 0:
            return f"as many active days as the week before (typical change {fmt(m)})"
        return f"{fmt(abs(v))} {'more' if v > 0 else 'fewer'} active days than the week before (typical change {fmt(m)})"
    if kind == "trend":
        return f"played {fmt(v)}× as many songs as the week before (typical {fmt(m)}×)"
    pair = f"({fmt(v)} vs {fmt(m)})"
    if v > m:
        if m > 0 and v >= 1.5 * m:
            return f"{fmt_ratio(v / m)}× more {noun} than typical {pair}"
        return f"more {noun} than typical {pair}"
    if v == m:
        return f"{noun}: {fmt(v)} (typical {fmt(m)})"
    if v <= 0:
        return f"no {noun} (typical {fmt(m)})"
    if m >= 1.5 * v:
        return f"{fmt_ratio(m / v)}× fewer {noun} than typical {pair}"
    return f"fewer {noun} than typical {pair}"


def shows_a_difference(feature: str, value: float, median: float) -> bool:
    """A reason must say something: the customer differs from the median as printed."""
    kind, _ = _describe(feature)
    if kind == "paid":
        return (value >= 0.5) != (median >= 0.5)
    return fmt(value) != fmt(median)


def top_reasons(pushes: dict[str, float], values: dict[str, float], medians: dict[str, float],
                n: int = TOP_N) -> list[dict]:
    """The `n` largest positive pushes as {feature, value, median, text, push}, largest first;
    none for a feature at (or printed as) the median."""
    ranked = sorted(((p, f) for f, p in pushes.items()
                     if p > 0 and not np.isnan(values[f]) and shows_a_difference(f, values[f], medians[f])),
                    key=lambda t: (-t[0], t[1]))[:n]
    return [{"feature": f, "value": float(values[f]), "median": float(medians[f]),
             "text": reason_text(f, values[f], medians[f]), "push": float(p)} for p, f in ranked]


def explain(x: np.ndarray, features: list[str], medians: dict[str, float],
            probability: Callable[[np.ndarray], np.ndarray], n: int = TOP_N) -> list[list[dict]]:
    """Reasons for each row of `x` (columns in `features` order): one probability call per
    feature, with that column set to its median."""
    x = np.asarray(x, float)
    base = probability(x)
    pushes = np.empty((len(x), len(features)))
    for j, f in enumerate(features):
        moved = x.copy()
        moved[:, j] = medians[f]
        pushes[:, j] = base - probability(moved)
    return [top_reasons(dict(zip(features, pushes[i])), dict(zip(features, x[i])), medians, n)
            for i in range(len(x))]
