"""Reason codes: the sentences (wording from the feature registry), the ranking by push, and
no reason where a customer matches the median."""

from __future__ import annotations

import numpy as np
import pytest

from models_ml.reasons import explain, fmt, reason_text, top_reasons

CASES = [
    ("thumbs_down_per_song_28d", 0.12, 0.04,
     "3× more thumbs down per song in the last 28 days than typical (0.12 vs 0.04)"),
    ("logouts_per_day_28d", 0.012, 0.0081, "more log-outs per day in the last 28 days than typical (0.012 vs 0.0081)"),
    ("pre_cancel_pages_per_day_28d", 1.25, 0.5,
     "2.5× more visits to pages that lead to Cancel per day in the last 28 days than typical (1.3 vs 0.5)"),
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


def test_top_reasons_keep_only_positive_pushes_largest_first():
    pushes = {"a": 0.02, "b": -0.01, "c": 0.05, "d": 0.0, "e": 0.01, "f": 0.03}
    values = {k: 1.0 for k in pushes}
    medians = {k: 0.5 for k in pushes}
    got = top_reasons(pushes, values, medians)
    assert [r["feature"] for r in got] == ["c", "f", "a"]


def test_numbers_keep_two_significant_digits_below_one():
    assert [fmt(x) for x in (0.0123, 0.5, 0.04, 0.00812, 1.25, 12.4, 3.0)] == \
        ["0.012", "0.5", "0.04", "0.0081", "1.3", "12", "3"]


def test_no_reason_for_a_feature_at_the_median_or_printed_as_it():
    pushes = {"logouts_per_day_28d": 0.05, "sessions_per_day_28d": 0.04, "thumbs_down_per_song_28d": 0.03}
    values = {"logouts_per_day_28d": 0.0121, "sessions_per_day_28d": 0.5, "thumbs_down_per_song_28d": 0.02}
    medians = {"logouts_per_day_28d": 0.0118, "sessions_per_day_28d": 0.5, "thumbs_down_per_song_28d": 0.01}
    # 0.0121 and 0.0118 both print as 0.012; sessions equal the median: only thumbs down remains
    assert [r["feature"] for r in top_reasons(pushes, values, medians)] == ["thumbs_down_per_song_28d"]


def test_reasons_on_a_known_linear_score():
    """probability = sigmoid(x1 + 2*x2 - x3), medians 0: pushes are computable by hand."""
    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    def probability(x):
        return sigmoid(x[:, 0] + 2 * x[:, 1] - x[:, 2])

    medians = {"x1": 0.0, "x2": 0.0, "x3": 0.0}
    x = np.array([[1.0, 0.5, -2.0], [-1.0, -1.0, 1.0], [0.0, 0.0, 0.0]])
    got = explain(x, ["x1", "x2", "x3"], medians, probability)
    # row 0: z = 4; without x1 3, without x2 3, without x3 2 -> x3 first, then x1 and x2 (tie by name)
    assert [r["feature"] for r in got[0]] == ["x3", "x1", "x2"]
    assert got[0][0]["push"] == pytest.approx(sigmoid(4) - sigmoid(2))
    assert got[0][0]["value"] == -2.0 and got[0][0]["median"] == 0.0
    # row 1: every feature pulls the probability down; row 2 sits at the median: no reasons
    assert got[1] == [] and got[2] == []
