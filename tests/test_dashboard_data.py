"""The dashboard's data access on tiny hand-made tables: every expected number is worked out by hand."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

for _module in ("dash", "dash_bootstrap_components", "dash_ag_grid", "plotly"):
    pytest.importorskip(_module, reason="the dashboard packages are not installed (pyproject dependencies)")

from dashboard.data import Lakehouse, TableCache, parse_curves, read_table, risk_cutoffs
from synthetic_lakehouse import table_dir, write_table
from dashboard.whatif import WhatIfAdapter, apply_edits, normalise

D = dt.date
T = pd.Timestamp
HISTORY = pa.list_(pa.struct([("changed_at", pa.timestamp("us")), ("from_level", pa.string()),
                              ("to_level", pa.string()), ("change_type", pa.string())]))


def customers_table() -> pa.Table:
    """A tiny `customers` mart as dbt writes it; the derived columns are worked out by hand from
    the profile columns, daily_frame() and scores_frame() below."""
    frame = pd.DataFrame({
        "user_id": ["1", "2", "3"],
        "first_name": ["Ann", "Bob", "Cy"],
        "last_name": ["Lee", "Ray", "Lee"],
        "gender": ["F", "M", "M"],
        "location": ["Napa, CA", "Troy, NY", "Napa, CA"],
        "city": ["Napa", "Troy", "Napa"],
        "state": ["CA", "NY", "CA"],
        "registered_at": [T("2018-09-01"), T("2018-09-20"), T("2018-10-01")],
        "first_event_at": [T("2018-10-01 08:00"), T("2018-10-02 08:00"), T("2018-10-01 09:00")],
        "last_event_at": [T("2018-10-10 12:00"), T("2018-10-08 18:00"), T("2018-10-10 09:00")],
        "first_level": ["free", "free", "free"],
        "current_level": ["paid", "free", "free"],
        "upgrades": [1, 0, 0],
        "downgrades": [0, 0, 0],
        "is_churned": [False, True, False],
        "churned_at": [pd.NaT, T("2018-10-08 18:00"), pd.NaT],
        "active_days": [4, 2, 5],
        "songs": [100, 10, 150],
        "sessions": [5, 2, 6],
        "listen_hours": [6.0, 0.6, 9.0],
        "name": ["Ann Lee", "Bob Ray", "Cy Lee"],
        "tenure_days": [39, 18, 9],  # 1 Sep -> 10 Oct, 20 Sep -> 8 Oct, 1 Oct -> 10 Oct
        "days_since_last_event": [0, 2, 0],
        "songs_per_active_day": [25.0, 5.0, 30.0],
        "songs_7d": [75, 0, 60],  # 4-10 Oct in daily_frame: user 1 on 5, 9, 10 Oct; user 3 on 6, 10 Oct
        "thumbs_down_per_100_songs": [0.0, 20.0, 0.0],
        "adverts_per_100_songs": [8.0, 40.0, 6.666666666666667],
        # latest score: user 1 re-scored at 09:00 on 11 Oct; user 2 only scored on 4 Oct
        "scored_as_of_date": [D(2018, 10, 11), D(2018, 10, 4), D(2018, 10, 11)],
        "is_current_score": [True, False, True],
        "churn_probability": [0.35, 0.50, 0.05],
        "risk_band": ["high", "high", "low"],
        "reason_1": ["2.0× more thumbs down per song than typical"] * 3,
        "reason_2": [None, None, None],
        "reason_3": [None, None, None],
        "model_run_id": ["run-a"] * 3,
        "scored_at": [T("2018-10-11 09:00"), T("2018-10-04 06:00"), T("2018-10-11 06:00")],
        # medians of the population scored at the customer's as_of: {1, 3} on 11 Oct, {1, 2, 3} on 4 Oct
        "median_active_days": [4.5, 4.0, 4.5],
        "active_days_vs_median": [4 / 4.5, 2 / 4.0, 5 / 4.5],
        "median_songs_per_active_day": [27.5, 25.0, 27.5],
        "songs_per_active_day_vs_median": [25 / 27.5, 5 / 25.0, 30 / 27.5],
    })
    table = pa.Table.from_pandas(frame, preserve_index=False)
    history = [[{"changed_at": dt.datetime(2018, 10, 5, 13), "from_level": "free", "to_level": "paid",
                 "change_type": "upgrade"}], [], []]
    return table.append_column("level_history", pa.array(history, type=HISTORY))


def daily_frame() -> pd.DataFrame:
    days = {"1": ["2018-10-01", "2018-10-05", "2018-10-09", "2018-10-10"],
            "2": ["2018-10-02", "2018-10-03"],
            "3": ["2018-10-01", "2018-10-02", "2018-10-03", "2018-10-06", "2018-10-10"]}
    songs = {"1": 25, "2": 5, "3": 30}
    rows = []
    for user, dates in days.items():
        for day in dates:
            rows.append({"user_id": user, "activity_date": D.fromisoformat(day), "events": songs[user] + 10,
                         "sessions_started": 1, "song_events": songs[user], "thumbs_up_events": 1,
                         "thumbs_down_events": 1 if user == "2" else 0, "advert_events": 2,
                         "listen_seconds": songs[user] * 200.0, "last_level": "free"})
    return pd.DataFrame(rows)


def scores_frame() -> pd.DataFrame:
    rows = [
        ("1", D(2018, 10, 4), 0.10, "low", T("2018-10-04 06:00")),
        ("2", D(2018, 10, 4), 0.50, "high", T("2018-10-04 06:00")),
        ("3", D(2018, 10, 4), 0.20, "medium", T("2018-10-04 06:00")),
        ("1", D(2018, 10, 11), 0.30, "high", T("2018-10-11 06:00")),
        ("1", D(2018, 10, 11), 0.35, "high", T("2018-10-11 09:00")),  # a later re-score wins
        ("3", D(2018, 10, 11), 0.05, "low", T("2018-10-11 06:00")),
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "as_of_date", "churn_probability", "risk_band", "scored_at"])
    frame["reason_1"] = "2.0× more thumbs down per song than typical"
    frame["reason_2"] = None
    frame["reason_3"] = None
    frame["model_run_id"] = "run-a"
    return frame


def runs_frame() -> pd.DataFrame:
    metrics = [{"model": "gbt", "auc_pr": 0.2, "roc_auc": 0.7, "is_selected": True},
               {"model": "baseline", "auc_pr": 0.1, "roc_auc": 0.6, "is_selected": False}]
    return pd.DataFrame([{
        "run_id": "run-a", "started_at": T("2018-10-12 06:00"), "protocol": "time",
        "train_as_of": [D(2018, 10, 4)], "selected_model": "gbt", "risk_bands": '{"high": 0.3, "medium": 0.1}',
        "model_path": "/nowhere", "report_path": "reports/run-a", "metrics": metrics,
    }])


@pytest.fixture()
def home(tmp_path):
    write_table(tmp_path, "customers", customers_table())
    write_table(tmp_path, "daily_activity", daily_frame())
    write_table(tmp_path, "churn_scores", scores_frame(), partition_cols=["as_of_date"])
    write_table(tmp_path, "model_runs", runs_frame())
    return tmp_path


@pytest.fixture()
def lakehouse(home):
    return Lakehouse(home, check_interval=0)


# -- customers and KPIs -------------------------------------------------------------------------

def test_overview_kpis_match_hand_counts(lakehouse):
    kpis = lakehouse.overview()["kpis"]
    assert kpis["customers"] == 3
    assert kpis["churned_share"] == pytest.approx(1 / 3)
    assert kpis["median_days_active"] == 4  # days 4, 2, 5
    assert kpis["median_songs_per_day"] == 25  # 100/4, 10/2, 150/5 = 25, 5, 30
    assert kpis["active_7d"] == 2  # users 1 and 3 listened after 3 Oct; user 2 last on 3 Oct
    assert kpis["date_range"] == (T("2018-10-01"), T("2018-10-10"))
    assert kpis["high_risk"] == 1 and kpis["scored"] == 2


def test_daily_totals_count_active_users_and_events(lakehouse):
    totals = lakehouse.overview()["daily_totals"].set_index("activity_date")
    assert totals.loc[T("2018-10-01"), "active_users"] == 2  # users 1 and 3
    assert totals.loc[T("2018-10-01"), "events"] == 35 + 40
    assert totals.loc[T("2018-10-02"), "songs"] == 5 + 30


def test_customers_come_from_the_mart_unchanged(lakehouse):
    # Against the values written by hand in customers_table(), not the mart read back by the dashboard's reader.
    mart = customers_table().to_pandas().set_index("user_id")
    mart["scored_as_of_date"] = pd.to_datetime(mart["scored_as_of_date"])  # the reader gives dates as Timestamps
    shown = lakehouse.customers().set_index("user_id")
    assert shown.index.tolist() == ["1", "2", "3"]
    for column in ("tenure_days", "songs_per_active_day", "churn_probability", "median_active_days",
                   "scored_as_of_date", "is_current_score"):
        assert shown[column].tolist() == mart.loc[shown.index, column].tolist(), column


def test_at_risk_lists_current_active_customers_by_probability(lakehouse):
    at_risk = lakehouse.at_risk()
    assert at_risk["user_id"].tolist() == ["1", "3"]  # user 2 churned and has no current score
    assert at_risk["churn_probability"].tolist() == pytest.approx([0.35, 0.05])


def test_hive_partition_column_is_read_as_a_date(home):
    frame = read_table(table_dir(home, "churn_scores"))
    assert set(frame["as_of_date"]) == {T("2018-10-04"), T("2018-10-11")}
    assert len(frame) == 6


def test_customer_view_slices_daily_rows_and_level_changes(lakehouse):
    view = lakehouse.customer("1")
    assert view.daily["activity_date"].tolist() == [T(d) for d in
                                                     ("2018-10-01", "2018-10-05", "2018-10-09", "2018-10-10")]
    assert view.level_changes["change_type"].tolist() == ["upgrade"]
    assert view.score["churn_probability"] == pytest.approx(0.35)
    activity = view.activity.set_index("metric")  # medians of the users scored on 11 Oct: 1 and 3
    assert activity.loc["songs_per_active_day", "value"] == 25
    assert activity.loc["songs_per_active_day", "median"] == 27.5  # 25 and 30
    assert activity.loc["songs_per_active_day", "ratio"] == pytest.approx(25 / 27.5)
    assert activity.loc["active_days", "median"] == 4.5  # 4 and 5
    assert set(activity.index) == {"active_days", "songs_per_active_day"}  # the mart's median columns


def test_customer_scored_earlier_is_compared_with_the_population_scored_then(lakehouse):
    view = lakehouse.customer("2")
    activity = view.activity.set_index("metric")  # users 1, 2 and 3 were scored on 4 Oct
    assert activity.loc["active_days", "median"] == 4  # 4, 2, 5
    assert activity.loc["active_days", "ratio"] == pytest.approx(0.5)
    assert view.score["scored_as_of_date"] == T("2018-10-04")
    assert view.score["is_current_score"] is False


def test_customer_never_scored_has_no_comparison(home):
    table = customers_table()
    frame = table.to_pandas()
    for column in ("median_active_days", "median_songs_per_active_day", "churn_probability"):
        frame.loc[frame["user_id"] == "3", column] = None
    write_table(home, "customers", pa.Table.from_pandas(frame, preserve_index=False))
    view = Lakehouse(home, check_interval=0).customer("3")
    assert view.activity.empty
    assert view.score is None


def test_score_on_a_training_date_is_flagged_in_sample(lakehouse):
    assert lakehouse.customer("2").score["in_sample"] is True  # scored 4 Oct, which run-a trained on
    assert lakehouse.customer("1").score["in_sample"] is False


# -- lookups -------------------------------------------------------------------------------------

@pytest.mark.parametrize("query, status, user", [
    ("3", "found", "3"),
    ("  3  ", "found", "3"),
    ("bob ray", "found", "2"),
    ("Ann", "found", "1"),
    ("Lee", "ambiguous", None),
    ("no-such-user-123", "unknown", None),
    ("' or 1=1 --", "unknown", None),
    ("x" * 10_240, "unknown", None),
    ("Zoë 東京 🎵", "unknown", None),
    ("", "empty", None),
])
def test_lookup_by_id_or_unique_name(lakehouse, query, status, user):
    result = lakehouse.lookup(query)
    assert result.status == status
    assert result.user_id == user


def test_unknown_id_has_no_customer_view(lakehouse):
    assert lakehouse.customer("no-such-user-123") is None


# -- caching and rebuilds --------------------------------------------------------------------------

def test_table_reloads_when_its_files_change(home):
    cache = TableCache("customers", table_dir(home, "customers"), check_interval=0)
    assert len(cache.get().frame) == 3
    write_table(home, "customers", customers_table().slice(0, 2))
    snap = cache.get()
    assert len(snap.frame) == 2 and snap.version == 2 and snap.problem is None


def test_unchanged_table_is_not_read_again(home):
    reads = []

    def counting_reader(path, query, drop):
        reads.append(path)
        return read_table(path, query, drop)

    cache = TableCache("customers", table_dir(home, "customers"), check_interval=0, reader=counting_reader)
    cache.get()
    cache.get()
    assert len(reads) == 1


def test_last_good_copy_is_served_while_the_folder_is_rebuilt(home, lakehouse):
    assert lakehouse.customers() is not None
    shutil.rmtree(table_dir(home, "customers"))
    snap = lakehouse.snapshot("customers")
    assert len(snap.frame) == 3 and "being rebuilt" in snap.problem
    assert lakehouse.lookup("3").status == "found"
    assert any("being rebuilt" in note for note in lakehouse.notes("customers"))
    write_table(home, "customers", customers_table())
    assert lakehouse.snapshot("customers").problem is None


def test_half_written_or_corrupt_files_keep_the_last_good_copy(home):
    cache = TableCache("customers", table_dir(home, "customers"), check_interval=0)
    assert len(cache.get().frame) == 3
    (Path(home) / "metastore.lock").write_text(f"pid {os.getpid()} (a build)\n")  # what metastore_lock writes
    (table_dir(home, "customers") / "_temporary").mkdir()  # Spark is writing
    assert len(cache.get().frame) == 3 and cache.get().problem == "being rebuilt"
    (table_dir(home, "customers") / "_temporary").rmdir()
    (Path(home) / "metastore.lock").write_text("")
    (table_dir(home, "customers") / "part-00001.parquet").write_bytes(b"not parquet at all")
    snap = cache.get()
    assert len(snap.frame) == 3 and "unreadable" in snap.problem
    os.remove(table_dir(home, "customers") / "part-00001.parquet")
    assert cache.get().problem is None


def test_a_killed_writers_leftovers_do_not_freeze_the_table(home):
    """A `make score` killed on Parquet leaves `_temporary` and its pid in the lock file, and no process."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (Path(home) / "metastore.lock").write_text(f"pid {dead.pid} (python -m models_ml.score)\n")
    (table_dir(home, "customers") / "_temporary" / "0").mkdir(parents=True)
    try:
        cache = TableCache("customers", table_dir(home, "customers"), check_interval=0)
        snap = cache.get()
        assert snap.problem is None and len(snap.frame) == len(read_table(table_dir(home, "customers")))
        (Path(home) / "metastore.lock").write_text(f"pid {os.getpid()} (python -m models_ml.score)\n")
        assert cache.get().problem == "being rebuilt"  # the same folder, with its writer alive
    finally:
        shutil.rmtree(table_dir(home, "customers") / "_temporary")
        (Path(home) / "metastore.lock").write_text("")


def test_missing_table_says_what_to_run(tmp_path):
    lakehouse = Lakehouse(tmp_path, check_interval=0)
    assert lakehouse.customers() is None and lakehouse.at_risk() is None and lakehouse.model_runs() is None
    assert lakehouse.lookup("1").status == "unavailable"
    notes = " ".join(lakehouse.notes("customers", "churn_scores"))
    assert "make build" in notes and "make train" in notes


def test_spark_marker_files_are_ignored(home):
    (table_dir(home, "customers") / "_SUCCESS").write_text("")
    (table_dir(home, "customers") / ".part-00000.snappy.parquet.crc").write_bytes(b"\x00\x01")
    assert len(read_table(table_dir(home, "customers"))) == 3


def test_delta_table_is_read_with_timestamps_in_naive_utc(tmp_path):
    frame = pd.DataFrame({"user_id": ["1", "2"], "scored_at": pd.to_datetime(
        ["2018-10-11 06:00", "2018-10-11 07:30"]).tz_localize("UTC")})
    write_table(tmp_path, "churn_scores", frame, delta=True)
    read = read_table(table_dir(tmp_path, "churn_scores")).sort_values("user_id")
    assert (table_dir(tmp_path, "churn_scores") / "_delta_log").is_dir()
    assert read["scored_at"].tolist() == [T("2018-10-11 06:00"), T("2018-10-11 07:30")]


# -- model report and what-if helpers -------------------------------------------------------------

def test_curves_json_in_the_model_reports_layout_is_parsed():
    raw = {"models": {"gbt": {
        "auc_pr": 0.2,
        "pr": {"recall": [0, 0.5, 1], "precision": [1, 0.4, 0.05]},
        "roc": {"fpr": [0, 1], "tpr": [0, 1]},
        "calibration": {"predicted": [0.1, 0.3], "observed": [0.12, 0.25]},
        "feature_importance": {"songs_7d": 0.7, "is_paid": 0.3},
    }, "lr": {"roc": [[0, 0], [0.5, 0.8], [1, 1]]}}}
    curves = parse_curves(raw)
    assert curves["gbt"]["pr"]["precision"].tolist() == [1, 0.4, 0.05]
    assert curves["gbt"]["calibration"]["observed"].tolist() == [0.12, 0.25]
    assert curves["gbt"]["importance"].set_index("feature")["importance"].to_dict() == {"songs_7d": 0.7,
                                                                                        "is_paid": 0.3}
    assert curves["lr"]["roc"]["tpr"].tolist() == [0, 0.8, 1]


def test_risk_cutoffs_from_the_runs_json():
    assert risk_cutoffs({"risk_bands": '{"high": 0.3, "medium": 0.1}'}) == {"high": 0.3, "medium": 0.1}
    assert risk_cutoffs({"risk_bands": "not json"}) == {}


def test_what_if_edits_keep_28_day_counts_consistent():
    out = apply_edits({"active_days_28d": 10, "songs_per_active_day_28d": 20, "thumbs_down_per_song_28d": 0.0,
                       "adverts_per_song_28d": 0.0, "tenure_days": 99},
                      {"songs_per_active_day_28d": 30, "thumbs_down_per_song_28d": 0.05})
    assert out["songs_28d"] == 300 and out["thumbs_down_28d"] == 15 and out["adverts_28d"] == 0
    assert out["tenure_days"] == 99


def test_what_if_results_of_any_shape_are_normalised():
    assert normalise(0.2).probability == 0.2
    assert normalise((0.3, "High", ["a"])).band == "high"
    result = normalise({"churn_probability": 0.4, "risk_band": "medium",
                        "reasons": [{"text": "r1"}, {"text": "r2"}]})
    assert (result.probability, result.band, result.reasons) == (0.4, "medium", ["r1", "r2"])


def test_what_if_adapter_reports_a_missing_model_calmly():
    adapter = WhatIfAdapter(target="no_such_module_for_sparkify:predict")
    adapter.start()
    assert adapter.wait(10) == "unavailable"
    assert "not installed" in adapter.message


def test_what_if_adapter_passes_only_the_models_numeric_inputs(monkeypatch, tmp_path):
    """Like models_ml.whatif: `load_model()` tells the inputs, and unknown names are an error."""
    seen = {}
    module = types.ModuleType("fake_whatif_for_tests")

    def what_if(values, model=None, home=None):
        assert home == str(tmp_path) and model is None  # no saved model directory: its own default
        unknown = set(values) - {"songs_7d", "is_paid"}
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}")
        seen.clear()
        seen.update(values)
        return types.SimpleNamespace(probability=0.1, risk_band="low", reasons=[{"text": "fine"}])

    module.what_if = what_if
    module.load_model = lambda model=None, home=None: types.SimpleNamespace(features=["songs_7d", "is_paid"])
    monkeypatch.setitem(sys.modules, module.__name__, module)
    adapter = WhatIfAdapter(target=f"{module.__name__}:what_if", home=str(tmp_path),
                            model_path=lambda: str(tmp_path / "missing-model"),
                            warmup_features=lambda: {"songs_7d": 3.0, "tenure_days": 9.0})
    adapter.start()
    assert adapter.wait(10) == "ready", adapter.message
    result = adapter.predict({"songs_7d": 4, "is_paid": True, "as_of_date": "2018-10-01", "x": float("nan")})
    assert (result.probability, result.band, result.reasons) == (0.1, "low", ["fine"])
    assert seen == {"songs_7d": 4.0, "is_paid": 1.0}


# -- backtests -----------------------------------------------------------------------------------

def backtests_frame() -> pd.DataFrame:
    """Two backtests; the later one (bt-2) has two snapshots, written newest first, and a pooled row."""
    def row(backtest, created, scope, as_of, rows, positives, roc, ap, lo=None, hi=None):
        return {"backtest_id": backtest, "created_at": created, "kind": "rolling", "model": "logreg",
                "model_source": "run-a", "scope": scope, "as_of_date": as_of,
                "train_as_of_first": D(2018, 10, 8), "train_as_of_last": D(2018, 10, 29), "rows": rows,
                "positives": positives, "prevalence": positives / rows, "roc_auc": roc, "roc_auc_lo": lo,
                "roc_auc_hi": hi, "average_precision": ap, "ap_lift": ap / (positives / rows)}
    return pd.DataFrame([
        row("bt-1", T("2018-12-04 06:00"), "pooled", None, 500, 20, 0.60, 0.10, 0.55, 0.65),
        row("bt-2", T("2018-12-05 06:00"), "snapshot", D(2018, 11, 19), 300, 15, 0.72, 0.20),
        row("bt-2", T("2018-12-05 06:00"), "snapshot", D(2018, 11, 12), 200, 10, 0.66, 0.15),
        row("bt-2", T("2018-12-05 06:00"), "pooled", None, 500, 25, 0.70, 0.18, 0.64, 0.76),
    ])


def test_model_page_backtest_is_the_latest_one_split_into_pooled_and_snapshots(tmp_path):
    write_table(tmp_path, "model_backtests", backtests_frame())
    backtest = Lakehouse(tmp_path, check_interval=0).backtest()
    assert backtest.pooled["backtest_id"] == "bt-2"
    assert backtest.pooled["roc_auc"] == 0.70
    assert (backtest.pooled["roc_auc_lo"], backtest.pooled["roc_auc_hi"]) == (0.64, 0.76)
    assert backtest.pooled["ap_lift"] == pytest.approx(0.18 / (25 / 500))  # 3.6
    assert backtest.snapshots["as_of_date"].tolist() == [T("2018-11-12"), T("2018-11-19")]
    assert backtest.snapshots["ap_lift"].tolist() == pytest.approx([0.15 / 0.05, 0.20 / 0.05])


def test_no_backtest_table_means_no_backtest(tmp_path):
    lakehouse = Lakehouse(tmp_path, check_interval=0)
    assert lakehouse.backtest() is None
    assert "make backtest" in " ".join(lakehouse.notes("model_backtests"))


def test_delta_table_is_read_at_its_committed_version_and_reloaded_on_a_new_commit(tmp_path):
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    path = tmp_path / "users"
    write_deltalake(str(path), pa.table({"x": [1, 2]}))
    cache = TableCache("users", path, check_interval=0)
    assert sorted(cache.get().frame["x"]) == [1, 2]
    pq.write_table(pa.table({"x": [9]}), path / "part-not-committed-yet.snappy.parquet")  # a writer mid-way
    assert sorted(cache.get().frame["x"]) == [1, 2] and cache.get().version == 1
    write_deltalake(str(path), pa.table({"x": [3]}), mode="append")
    snap = cache.get()
    assert sorted(snap.frame["x"]) == [1, 2, 3] and snap.version == 2 and snap.problem is None
