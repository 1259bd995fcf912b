"""Metrics, threshold choice, risk bands and calibration, against hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from models_ml import calibration, decision, evaluate
from test_ml_fixtures import ml_spark  # noqa: F401


def test_average_precision_and_roc_auc_by_hand():
    y, s = [1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]
    assert evaluate.average_precision(y, s) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert evaluate.roc_auc(y, s) == pytest.approx(3 / 4)  # pairs (.9,.8) (.9,.1) (.7,.1) win, (.7,.8) loses
    assert evaluate.roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)


def test_metrics_at_threshold_by_hand():
    y = [1, 1, 0, 0, 0, 1]
    p = [0.9, 0.2, 0.8, 0.1, 0.1, 0.6]
    m = evaluate.at_threshold(y, p, 0.5)  # flagged: rows 0, 2, 5 -> tp 2, fp 1, fn 1
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["weighted_f1"] == pytest.approx(2 / 3)  # class 0 also has P = R = 2/3
    assert evaluate.brier([1, 0], [0.75, 0.25]) == pytest.approx(0.0625)
    assert evaluate.precision_at_top([1, 0] * 10, list(range(20, 0, -1))) == pytest.approx(0.5)


def test_threshold_maximises_churn_f1_on_validation():
    y = [1, 1, 0, 1, 0, 0, 0, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    # F1 at each cut: .9 -> 2/4, .8 -> 4/5, .7 -> 4/6, .6 -> 6/7 (best), .5 -> 6/8 ...
    assert decision.choose_threshold(y, p) == pytest.approx(0.6)


def test_threshold_ties_go_to_the_higher_threshold():
    # .9 -> 2/3, .8 -> 2/4, .7 -> 2/5, .6 -> 4/6 = 2/3: a tie, so flag fewer customers
    assert decision.choose_threshold([1, 0, 0, 1], [0.9, 0.8, 0.7, 0.6]) == pytest.approx(0.9)


def test_risk_bands():
    bands = decision.risk_bands(threshold=0.12, base_rate=0.05)
    assert bands == {"high": 0.12, "medium": 0.05}
    assert [decision.band(p, bands) for p in (0.2, 0.12, 0.07, 0.05, 0.01)] == \
        ["high", "high", "medium", "medium", "low"]
    assert decision.risk_bands(threshold=0.04, base_rate=0.05) == {"high": 0.04, "medium": 0.02}


def test_platt_recovers_known_parameters():
    rng = np.random.default_rng(1)
    s = rng.normal(0, 2, 60000)
    y = (rng.random(len(s)) < 1 / (1 + np.exp(-(1.5 * s - 2.0)))).astype(float)
    cal = calibration.fit_platt(s, y)
    assert cal.a == pytest.approx(1.5, abs=0.05) and cal.b == pytest.approx(-2.0, abs=0.05)

    def nll(a, b):  # the fit is the maximum-likelihood answer: no worse than the true parameters
        z = a * s + b
        return np.sum(np.logaddexp(0, z) - y * z)

    assert nll(cal.a, cal.b) <= nll(1.5, -2.0)
    assert cal.apply([0.0])[0] == pytest.approx(1 / (1 + np.exp(-cal.b)))


def test_platt_on_separable_scores_stays_finite():
    cal = calibration.fit_platt([0, 1, 2, 3, 10, 11], [0, 0, 0, 0, 1, 1])
    p = cal.apply([0, 11])
    assert np.isfinite([cal.a, cal.b]).all() and 0 < p[0] < p[1] < 1


def test_isotonic_pools_adjacent_violators():
    cal = calibration.fit_isotonic([1, 2, 3, 4, 5, 6], [0, 1, 0, 1, 1, 1])
    # blocks: {1}: 0, {2,3}: 0.5 at mean score 2.5, {4,5,6}: 1 at mean score 5
    assert cal.knots_x == (1.0, 2.5, 5.0) and cal.knots_y == (0.0, 0.5, 1.0)
    assert cal.apply([0, 1.75, 3.75, 9]).tolist() == pytest.approx([0, 0.25, 0.75, 1])


def test_calibrator_round_trips_through_json():
    cal = calibration.Calibrator("platt", 0.8, -2.5)
    assert calibration.Calibrator.from_dict(cal.to_dict()) == cal


@pytest.mark.spark
@pytest.mark.parametrize("cal", [
    calibration.Calibrator("platt", 0.7, -1.2),
    calibration.Calibrator("isotonic", knots_x=(1.0, 2.5, 5.0), knots_y=(0.0, 0.5, 1.0)),
])
def test_spark_calibration_matches_numpy(ml_spark, cal):
    from pyspark.sql import functions as F

    scores = [-3.0, 0.0, 1.0, 1.75, 2.5, 3.75, 5.0, 9.0]
    df = ml_spark.createDataFrame([(s,) for s in scores], "s double")
    got = [r[0] for r in df.select(cal.apply_col(F.col("s"))).collect()]
    assert got == pytest.approx(cal.apply(scores).tolist(), abs=1e-12)


def test_precision_at_top_gives_fractional_credit_to_a_tie_at_the_cut():
    # 20 rows -> the top 10% is 2 slots: one row at 0.9 (a churner), then a three-way tie at 0.5
    # holding one churner shares the last slot: (1 + 1 * 1/3) / 2
    y = [1, 1, 0, 0] + [0] * 16
    s = [0.9, 0.5, 0.5, 0.5] + [0.1] * 16
    assert evaluate.precision_at_top(y, s) == pytest.approx((1 + 1 / 3) / 2)
    order = np.random.default_rng(0).permutation(20)  # row order cannot change it
    assert evaluate.precision_at_top(np.array(y)[order], np.array(s)[order]) == pytest.approx((1 + 1 / 3) / 2)


def test_intervals_resample_whole_users():
    """Each user's rows repeated three times carry no more information: a user-grouped bootstrap
    gives the same interval as one row per user (same seed, same users drawn)."""
    rng = np.random.default_rng(1)
    n = 80
    y = (rng.random(n) < 0.3).astype(float)
    s = y * 0.4 + rng.random(n)
    users = np.array([f"u{i}" for i in range(n)])
    once = evaluate.with_intervals(y, s, users, reps=100, seed=5)
    thrice = evaluate.with_intervals(np.repeat(y, 3), np.repeat(s, 3), np.repeat(users, 3), reps=100, seed=5)
    assert once["roc_auc"] == pytest.approx(evaluate.roc_auc(y, s))
    assert once["roc_auc_lo"] <= once["roc_auc"] <= once["roc_auc_hi"]
    assert thrice["roc_auc"] == pytest.approx(once["roc_auc"])
    assert (thrice["roc_auc_lo"], thrice["roc_auc_hi"]) == pytest.approx((once["roc_auc_lo"], once["roc_auc_hi"]))
    assert once["rows"] == n and once["positives"] == int(y.sum())
    assert once["ap_lift"] == pytest.approx(evaluate.average_precision(y, s) / y.mean())


def test_paired_difference_is_the_metric_gap_and_vanishes_for_the_same_scores():
    rng = np.random.default_rng(2)
    y = (rng.random(60) < 0.3).astype(float)
    good, noise = y + rng.random(60), rng.random(60)
    users = np.arange(60).astype(str)
    gap, se = evaluate.paired_difference(y, good, noise, users, reps=100)
    assert gap == pytest.approx(evaluate.average_precision(y, good) - evaluate.average_precision(y, noise))
    assert se > 0
    assert evaluate.paired_difference(y, good, good, users, reps=50) == (0.0, 0.0)
