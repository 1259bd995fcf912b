"""Figure functions on tiny frames: the numbers plotted are the numbers computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

for _module in ("dash", "dash_bootstrap_components", "dash_ag_grid", "plotly"):
    pytest.importorskip(_module, reason="the dashboard packages are not installed (pyproject dependencies)")

from dashboard import figures
from dashboard.theme import BAND_COLORS, LEVEL_COLORS

T = pd.Timestamp


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_daily_activity_plots_users_on_the_left_and_events_on_the_right():
    totals = pd.DataFrame({"activity_date": [T("2018-10-01"), T("2018-10-02")], "active_users": [3, 5],
                           "events": [120, 80]})
    fig = figures.daily_activity(totals)
    assert list(trace(fig, "Active users").y) == [3, 5]
    assert list(trace(fig, "Events").y) == [120, 80]
    assert trace(fig, "Events").yaxis == "y2"


def test_probability_histogram_counts_each_band_and_aligns_bins_with_cutoffs():
    scores = pd.DataFrame({"churn_probability": [0.01, 0.02, 0.12, 0.31, 0.33],
                           "risk_band": ["low", "low", "medium", "high", "high"]})
    fig = figures.probability_histogram(scores, {"medium": 0.10, "high": 0.25})
    assert sum(trace(fig, "Low risk").y) == 2
    assert sum(trace(fig, "Medium risk").y) == 1
    assert sum(trace(fig, "High risk").y) == 2
    edges = figures.histogram_edges(0.33)
    assert 0.10 in edges and 0.25 in edges and edges[-1] >= 0.33


def test_band_shares_per_group():
    frame = pd.DataFrame({"current_level": ["free", "free", "free", "free", "paid"],
                          "risk_band": ["high", "low", "low", "medium", "low"]})
    shares = figures.band_shares(frame, "current_level")
    assert shares.loc["free", "high"] == 0.25 and shares.loc["free", "low"] == 0.5
    assert shares.loc["paid", "low"] == 1.0 and shares.loc["paid", "high"] == 0.0
    assert shares.loc["free", "customers"] == 4


def test_risk_by_state_keeps_the_largest_states():
    frame = pd.DataFrame({"state": ["CA"] * 3 + ["NY"] * 2 + ["TX"], "risk_band": ["high", "low", "low", "low",
                                                                                  "medium", "high"]})
    fig = figures.risk_by_group(frame, "state", "Risk by state", top=2)
    labels = set(trace(fig, "High risk").y)
    assert labels == {"CA (3)", "NY (2)"}
    assert dict(zip(trace(fig, "High risk").y, trace(fig, "High risk").x))["CA (3)"] == pytest.approx(1 / 3)


def test_gender_and_level_mix_counts_customers():
    users = pd.DataFrame({"gender": ["F", "F", "M", "M", "M"],
                          "current_level": ["paid", "free", "free", "free", "paid"]})
    fig = figures.gender_level_mix(users)
    assert dict(zip(trace(fig, "Free").x, trace(fig, "Free").y)) == {"Female": 1, "Male": 2}
    assert trace(fig, "Paid").marker.color == LEVEL_COLORS["paid"]


def test_engagement_scatter_colours_by_band_and_greys_the_unscored():
    customers = pd.DataFrame({"user_id": ["1", "2", "3"], "active_days": [10, 3, 7],
                              "songs_per_active_day": [40.0, 12.5, 20.0], "risk_band": ["low", "high", None]})
    fig = figures.engagement_scatter(customers)
    high = trace(fig, "High risk")
    assert list(high.x) == [3] and list(high.y) == [12.5] and high.marker.color == BAND_COLORS["high"]
    assert list(trace(fig, "Not scored / churned").customdata[:, 0]) == ["3"]


def test_activity_against_median_is_a_ratio_and_red_where_worse():
    activity = pd.DataFrame({"metric": ["active_days", "thumbs_down"], "label": ["Days active", "Thumbs down"],
                             "value": [5.0, 3.0], "median": [10.0, 1.5], "ratio": [5.0 / 10.0, 3.0 / 1.5],
                             "better": ["higher", "lower"]})
    fig = figures.activity_vs_median(activity)
    assert list(fig.data[0].x) == [0.5, 2.0]
    assert list(fig.data[0].marker.color) == [BAND_COLORS["high"], BAND_COLORS["high"]]
    assert list(fig.data[0].text) == ["5.0 vs 10", "3.0 vs 1.5"]


def test_activity_far_above_the_median_is_capped_but_labelled_with_real_numbers():
    activity = pd.DataFrame({"metric": ["songs_7d"], "label": ["Songs"], "value": [1086.0], "median": [6.0],
                             "ratio": [1086.0 / 6.0], "better": ["higher"]})
    fig = figures.activity_vs_median(activity)
    assert list(fig.data[0].x) == [figures.RATIO_CAP]
    assert list(fig.data[0].text) == ["1,086 vs 6.0"]


def test_songs_timeline_splits_levels_and_marks_upgrades():
    daily = pd.DataFrame({"activity_date": [T("2018-10-01"), T("2018-10-02"), T("2018-10-03")],
                          "song_events": [10, 20, 30], "last_level": ["free", "free", "paid"]})
    changes = pd.DataFrame({"changed_at": [T("2018-10-03 09:00")], "from_level": ["free"], "to_level": ["paid"],
                            "change_type": ["upgrade"]})
    fig = figures.songs_timeline(daily, changes)
    assert list(trace(fig, "Songs (free)").y) == [10, 20]
    assert list(trace(fig, "Songs (paid)").y) == [30]
    assert list(trace(fig, "Upgrade").x) == [T("2018-10-03 09:00")]


def test_model_curves_highlight_the_selected_model():
    curves = {"gbt": {"roc": pd.DataFrame({"fpr": [0, 1], "tpr": [0, 1]})},
              "lr": {"roc": pd.DataFrame({"fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1]})}}
    fig = figures.roc_curves(curves, selected="lr")
    assert trace(fig, "lr (selected)").line.width > trace(fig, "gbt").line.width
    assert list(trace(fig, "lr (selected)").y) == [0, 0.8, 1]


def test_feature_importance_shows_the_largest_first():
    importance = pd.DataFrame({"feature": ["a", "b", "c"], "importance": [0.1, 0.6, 0.3]})
    fig = figures.feature_importance(importance, top=2)
    assert list(fig.data[0].y) == ["c", "b"]  # bottom to top: the largest ends on top


def test_missing_data_gives_a_message_not_an_error():
    for fig in (figures.probability_histogram(pd.DataFrame()), figures.daily_activity(pd.DataFrame()),
                figures.pr_curves({}), figures.feature_importance(None), figures.run_history(None)):
        assert fig.layout.annotations and not fig.data


def test_probability_gauge_marks_both_points():
    fig = figures.probability_gauge(0.3, 0.1, {"medium": 0.1, "high": 0.25})
    assert list(trace(fig, "What-if").x) == [0.3] and list(trace(fig, "Starting point").x) == [0.1]
    assert trace(fig, "What-if").marker.color == BAND_COLORS["high"]
    assert np.isclose([s.x0 for s in fig.layout.shapes], [0, 0.1, 0.25]).all()


def test_backtest_figure_plots_roc_auc_and_ap_lift_per_snapshot_in_date_order():
    snapshots = pd.DataFrame({"as_of_date": [T("2018-11-12"), T("2018-10-29"), T("2018-11-05")],
                              "roc_auc": [0.71, 0.64, 0.69], "average_precision": [0.15, 0.12, 0.20],
                              "prevalence": [0.05, 0.06, 0.05]})
    snapshots["ap_lift"] = snapshots["average_precision"] / snapshots["prevalence"]  # 3.0, 2.0, 4.0
    fig = figures.backtest_snapshots(snapshots)
    roc, lift = trace(fig, "ROC-AUC"), trace(fig, "Average precision ÷ prevalence")
    assert list(roc.x) == [T("2018-10-29"), T("2018-11-05"), T("2018-11-12")]
    assert list(roc.y) == [0.64, 0.69, 0.71]
    assert list(lift.y) == pytest.approx([2.0, 4.0, 3.0])
    assert lift.yaxis == "y2" and fig.layout.yaxis2.range[1] >= 4.0


def test_backtest_figure_without_snapshots_says_so():
    fig = figures.backtest_snapshots(pd.DataFrame(columns=["as_of_date", "roc_auc", "ap_lift"]))
    assert fig.data == () and "No per-snapshot rows" in fig.layout.annotations[0].text
