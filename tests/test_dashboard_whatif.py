"""What-if controls follow the saved model: its most important features, their ranges and labels."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pandas as pd
import pytest

from dashboard.data import Lakehouse
from synthetic_lakehouse import write_table
from dashboard.whatif import Control, model_controls, nice_range, parse_typed
from sparkify import features as registry

META = {
    "features": ["songs_28d", "logouts_28d", "is_paid", "sessions_28d", "thumbs_down_per_song_28d",
                 "days_since_last_activity", "tenure_days"],
    "importance": {"songs_28d": 0.05, "logouts_28d": 0.30, "is_paid": 0.25, "sessions_28d": 0.10,
                   "thumbs_down_per_song_28d": 0.20, "days_since_last_activity": 0.05, "tenure_days": 0.05},
    "feature_ranges": {"songs_28d": [3.0, 812.7], "logouts_28d": [0.0, 27.0], "is_paid": [0, 1],
                       "sessions_28d": [1.0, 40.0], "thumbs_down_per_song_28d": [0.0, 0.0523],
                       "days_since_last_activity": [0.0, 20.0], "tenure_days": [2.0, 300.0]},
    "medians": {},
}


def test_sliders_are_the_five_most_important_features_with_registry_labels():
    controls = model_controls(META)
    # by importance, is_paid left to the Free/Paid control; songs_28d, days_since and tenure tie at
    # 0.05 and keep the order of meta["features"], so songs_28d is fifth
    assert [c.feature for c in controls] == ["logouts_28d", "thumbs_down_per_song_28d", "sessions_28d",
                                             "songs_28d", "days_since_last_activity"]
    assert [c.label for c in controls] == [registry.get(c.feature).label for c in controls]


def test_slider_ranges_come_from_the_training_percentiles_with_a_step_of_about_a_hundredth():
    controls = {c.feature: c for c in model_controls(META)}
    # 0..27: 27/100 = 0.27 -> the next of 1, 2, 5 x 10^k is 0.5
    assert (controls["logouts_28d"].low, controls["logouts_28d"].high, controls["logouts_28d"].step) == (0, 27, 0.5)
    # 3..812.7: 8.097 -> 10; ends rounded out to whole steps: 0 and 820
    assert (controls["songs_28d"].low, controls["songs_28d"].high, controls["songs_28d"].step) == (0, 820, 10)
    # 0..0.0523: 0.000523 -> 0.001; 0.0523 rounds out to 0.053
    low, high, step = nice_range(0.0, 0.0523)
    assert (low, step) == (0, 0.001) and high == pytest.approx(0.053)


def test_older_model_without_importance_uses_its_feature_order_and_the_latest_feature_rows():
    meta = {"features": ["tenure_days", "is_paid", "songs_28d"], "medians": {}}
    latest = pd.DataFrame({"tenure_days": [float(v) for v in range(101)],  # 0..100: 1st pct 1, 99th 99
                           "songs_28d": [0.0] * 50 + [200.0] * 51})
    controls = model_controls(meta, latest)
    assert [c.feature for c in controls] == ["tenure_days", "songs_28d"]
    tenure = controls[0]
    assert (tenure.low, tenure.high) == (1, 99)  # step 0.98 -> 1
    assert (controls[1].low, controls[1].high) == (0, 200)


def test_a_feature_without_any_range_is_left_out():
    assert model_controls({"features": ["songs_28d"]}, pd.DataFrame({"other": [1.0]})) == []
    assert model_controls(None) == [] and model_controls({}) == []


@pytest.mark.parametrize("text, why", [
    ("nan", "not a finite number"), ("inf", "not a finite number"), ("-Infinity", "not a finite number"),
    ("1e9", "outside the range"), ("-1", "outside the range"), ("lots", "not a number"),
])
def test_non_finite_or_out_of_range_typed_values_are_refused(text, why):
    control = Control("logouts_28d", "Log-outs", 0.0, 27.0, 0.5)
    value, problem = parse_typed(text, control)
    assert value is None and why in problem and "Log-outs" in problem


def test_typed_value_in_range_is_taken_and_blank_means_the_slider():
    control = Control("logouts_28d", "Log-outs", 0.0, 27.0, 0.5)
    assert parse_typed(" 12.25 ", control) == (12.25, None)
    assert parse_typed("27", control) == (27.0, None)
    assert parse_typed("", control) == (None, None) and parse_typed(None, control) == (None, None)


def test_lakehouse_reads_the_latest_models_meta(tmp_path):
    (tmp_path / "models" / "run-b").mkdir(parents=True)
    (tmp_path / "models" / "run-b" / "model.json").write_text(json.dumps(META))
    lakehouse = Lakehouse(tmp_path, check_interval=0)
    assert lakehouse.model_meta() is None  # no `latest` pointer yet: not trained
    (tmp_path / "models" / "latest").write_text("run-b\n")
    assert lakehouse.model_meta()["importance"]["logouts_28d"] == 0.30
    write_table(tmp_path, "user_features", pd.DataFrame({"user_id": ["1"], "as_of_date": [pd.Timestamp("2018-11-01")],
                                                          "logouts_28d": [3.0]}))
    assert lakehouse.whatif_controls()[0].feature == "logouts_28d"
    assert all(math.isfinite(c.step) and c.step > 0 for c in lakehouse.whatif_controls())


@pytest.mark.parametrize("sent, why", [(float("inf"), "not a finite number"), (1e308, "outside the range"),
                                       ("drop table", "not a number"), (-5, "outside the range")])
def test_a_slider_value_the_client_forged_is_refused_with_a_message(sent, why):
    from dashboard.whatif import typed_values

    control = Control("logouts_28d", "Log-outs", 0.0, 27.0, 0.5)
    ids = [{"type": "whatif-slider", "feature": "logouts_28d"}]
    values, problems = typed_values([sent], [None], ids, [asdict(control)])
    assert values == [None] and len(problems) == 1 and why in problems[0]
    assert typed_values([13.5], [None], ids, [asdict(control)]) == ([13.5], [])
    assert typed_values([13.5], ["20"], ids, [asdict(control)]) == ([20.0], [])
