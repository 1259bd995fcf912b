"""The dbt lakehouse on the eventsim sample, checked against pandas computations from the raw file."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import BAD_LINES, NEW_DAY_START_MS, dbt
from sparkify import settings as cfg

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CANCEL_PAGES = {"Cancel", "Cancellation Confirmation"}
# The pages from which eventsim users reach Cancel, as observed in the simulator's logs.
PRE_CANCEL_PAGES = {"Downgrade", "Roll Advert", "Settings", "Thumbs Down"}
HORIZON = pd.Timedelta(days=14)


# --- pandas reference -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def user_events(sample_events) -> pd.DataFrame:
    events = sample_events[sample_events["userId"] != ""].copy()
    events["event_at"] = pd.to_datetime(events["ts"], unit="ms")
    events["event_date"] = events["event_at"].dt.normalize()
    return events.sort_values(["userId", "ts", "itemInSession"]).reset_index(drop=True)


def reference_as_of_dates(events: pd.DataFrame) -> list[pd.Timestamp]:
    first, last = events["event_date"].min(), events["event_date"].max()
    weekly = list(pd.date_range(first + pd.Timedelta(days=7), last, freq="7D"))
    return sorted(set(weekly) | {last + pd.Timedelta(days=1)})


def reference_features(events: pd.DataFrame) -> pd.DataFrame:
    """Eligible (user, as_of) rows with a few features and labels, computed from raw events."""
    data_end = events["event_at"].max()
    data_start = events["event_date"].min()
    churned_at = events[events["page"] == "Cancellation Confirmation"].groupby("userId")["event_at"].min()
    first_at = events.groupby("userId")["event_at"].min()
    registered = pd.to_datetime(events.groupby("userId")["registration"].min(), unit="ms")
    rows = []
    for as_of in reference_as_of_dates(events):
        before = events[events["event_at"] < as_of]
        active = before[~before["page"].isin(CANCEL_PAGES)]
        last_active = active.groupby("userId")["event_at"].max()
        for user, last_at in last_active.items():
            churn = churned_at.get(user)
            if last_at < as_of - pd.Timedelta(days=28) or (churn is not None and churn <= as_of):
                continue
            mine = active[active["userId"] == user]
            week = mine[mine["event_at"] >= as_of - pd.Timedelta(days=7)]
            month = mine[mine["event_at"] >= as_of - pd.Timedelta(days=28)]
            songs_28d = int((month["page"] == "NextSong").sum())
            observed_28d = (min(as_of, data_end) - max(as_of - pd.Timedelta(days=28), data_start)).total_seconds() / 86400
            start = min(registered.get(user, first_at[user]), first_at[user])
            complete = as_of + HORIZON <= data_end
            rows.append({
                "user_id": user,
                "as_of_date": as_of,
                "songs_7d": int((week["page"] == "NextSong").sum()),
                "songs_28d": songs_28d,
                "thumbs_down_lifetime": int((mine["page"] == "Thumbs Down").sum()),
                "adverts_per_song_28d": (
                    (month["page"] == "Roll Advert").sum() / songs_28d if songs_28d else np.nan
                ),
                # windows end at the end of the data when as_of lies after it
                "days_since_last_activity": (min(as_of, data_end) - last_at).total_seconds() / 86400,
                "logouts_per_day_28d": (month["page"] == "Logout").sum() / observed_28d,
                "pre_cancel_pages_per_day_28d": month["page"].isin(PRE_CANCEL_PAGES).sum() / observed_28d,
                "tenure_days": (as_of - start.normalize()).days,
                "is_paid": int(before[before["userId"] == user]["level"].iloc[-1] == "paid"),
                "churned_within_horizon": (
                    float(churn is not None and churn <= as_of + HORIZON) if complete else np.nan
                ),
            })
    return pd.DataFrame(rows)


def reference_session_count(events: pd.DataFrame, gap_minutes: int = 30) -> int:
    ordered = events.sort_values(["userId", "sessionId", "ts", "itemInSession"])
    same = (ordered["userId"] == ordered["userId"].shift()) & (
        ordered["sessionId"] == ordered["sessionId"].shift()
    )
    gap = ordered["ts"] - ordered["ts"].shift()
    return int((~same | (gap > gap_minutes * 60 * 1000)).sum())


# --- ingestion --------------------------------------------------------------------------------

def test_malformed_lines_land_in_quarantine_with_reason(built_lakehouse, spark, fixture_files):
    quarantined = spark.table("sparkify.quarantined_lines").toPandas()
    got = dict(zip(quarantined["raw_line"], quarantined["reject_reason"]))
    assert got == BAD_LINES
    assert set(quarantined["source_file"]) == {f"file:{fixture_files.bad_file}"}


def test_raw_lines_reconcile_with_clean_duplicates_quarantine_and_guests(
    built_lakehouse, spark, sample_events, fixture_files
):
    user_lines = sample_events[sample_events["userId"] != ""]
    distinct_user_events = len(user_lines.drop_duplicates())
    raw_lines = len(sample_events) + len(BAD_LINES) + len(fixture_files.duplicated_lines)
    bronze = spark.table("sparkify.bronze_events").toPandas()
    counts = bronze.groupby("record_status")["line_count"].sum()
    assert bronze["line_count"].sum() == raw_lines
    assert spark.table("sparkify.stg_sparkify__events").count() == distinct_user_events
    assert counts["event"] - distinct_user_events == len(user_lines) + 2 - distinct_user_events
    assert counts["quarantined"] == len(BAD_LINES)
    assert counts["guest"] == (sample_events["userId"] == "").sum()
    assert spark.table("sparkify.stg_sparkify__guest_events").count() == counts["guest"]


def test_incremental_run_adds_only_the_new_day(first_build, incremental_build, fixture_files):
    before, after = first_build["bronze_events"], incremental_build["bronze_events"]
    new_file = f"file:{fixture_files.raw_dir / fixture_files.new_day_file.name}"
    added = after[~after["line_hash"].isin(before["line_hash"]) | (after["source_file"] == new_file)]
    assert set(added["source_file"]) == {new_file}
    assert added["line_count"].sum() == len(fixture_files.new_day_file.read_text().splitlines())
    new_day = pd.Timestamp(NEW_DAY_START_MS, unit="ms").date()
    assert (added["event_date"] >= new_day).all()
    key = ["source_file", "line_hash", "loaded_at"]
    kept = after[after["source_file"] != new_file].sort_values(key)[key].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.sort_values(key)[key].reset_index(drop=True))
    old_events = incremental_build["stg_sparkify__events"]
    old_events = old_events[old_events["event_date"] < new_day]
    assert set(old_events["event_id"]) == set(first_build["stg_sparkify__events"]["event_id"])


def test_rerun_without_new_files_changes_nothing(incremental_build, rerun_build, fixture_files):
    # On Parquet users is a table every build rewrites (dbt_project/models/marts/users.sql): the same rows, a new
    # write time. Every other table, and users on Delta, is incremental: a re-run writes nothing, so even
    # updated_at stays.
    rewritten = {"users"} if fixture_files.settings.table_format.name == "parquet" else set()
    for table, frame in incremental_build.items():
        ordered = sorted(c for c in frame.columns if not (table in rewritten and c == "updated_at"))
        keys = [c for c in ("source_file", "line_hash", "event_id", "session_key", "user_id", "as_of_date",
                            "activity_date") if c in frame.columns]
        expected = frame[ordered].sort_values(keys).reset_index(drop=True)
        actual = rerun_build[table][ordered].sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(actual, expected, obj=table)


# --- models -----------------------------------------------------------------------------------

def test_column_rules_name_each_broken_rule_with_the_rows_that_break_it(built_lakehouse, spark):
    """The one data test per model (dbt_project/tests/generic/column_rules.sql), as the build compiled it
    for user_features, run on rows that break each of its rules: every broken rule is named, with the
    number of rows breaking it counted here by pandas from the rule's arguments in the manifest."""
    def column_rules_of_user_features() -> tuple[dict, dict]:
        nodes = json.loads((built_lakehouse.home / "dbt" / "target" / "manifest.json").read_text())["nodes"]
        return nodes, next(n for n in nodes.values() if (n.get("test_metadata") or {}).get("name") == "column_rules"
                           and n["attached_node"] == "model.sparkify.user_features")

    _, test = column_rules_of_user_features()
    dbt("compile", "--select", test["name"])  # the manifest keeps compiled SQL of the last command's nodes
    nodes, test = column_rules_of_user_features()
    day = dt.date(2018, 10, 8)
    week = dt.date(2018, 10, 15)
    frames = {
        "user_features": pd.DataFrame({
            "user_id": ["1", "1", "2", None, "9", "2", "2"],
            "as_of_date": [day, day, week, day, week, dt.date(2018, 10, 9), None],
            "churned_within_horizon": [0, 0, 1, 2, None, 0, 1],
            "is_paid": [1, 0, 3, 1, 0, None, 0],
            # the test checks the rows a build wrote (updated_at since the run began): these all are
            "updated_at": [dt.datetime.now() + dt.timedelta(days=1)] * 7,
        }, dtype=object),
        "users": pd.DataFrame({"user_id": ["1", "2"]}),
        "int_as_of_dates": pd.DataFrame({"as_of_date": [day, week]}),
    }
    types = {"user_id": "string", "as_of_date": "date", "churned_within_horizon": "int", "is_paid": "int",
             "updated_at": "timestamp"}
    sql = test["compiled_code"]
    for unique_id in test["depends_on"]["nodes"]:
        node = nodes[unique_id]
        frame = frames[node["name"]]
        schema = ", ".join(f"{column} {types[column]}" for column in frame.columns)
        records = [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]
        spark.createDataFrame(records, schema).createOrReplaceTempView(f"rules_{node['name']}")
        sql = sql.replace(node["relation_name"], f"rules_{node['name']}")
    found = {row["rule"]: row["failing_rows"] for row in spark.sql(sql).collect()}

    rules = test["test_metadata"]["kwargs"]
    rows = frames["user_features"]
    expected = {}
    for key in rules["unique"]:
        columns = [key] if isinstance(key, str) else key
        expected[f"unique({', '.join(columns)})"] = len(rows) - len(rows.drop_duplicates(columns))
    for column in rules["not_null"]:
        expected[f"not_null({column})"] = int(rows[column].isna().sum())
    for column, values in rules["accepted_values"].items():
        expected[f"accepted_values({column})"] = int((rows[column].notna() & ~rows[column].isin(values)).sum())
    for column, parent in rules["relationships"].items():
        parent_name = parent.split("'")[1]
        missing = rows[column].notna() & ~rows[column].isin(frames[parent_name][column])
        expected[f"relationships({column} -> {parent_name})"] = int(missing.sum())
    assert all(count > 0 for count in expected.values()), expected  # the rows break every rule
    assert len(expected) == 7
    assert found == expected


def test_row_counts_match_pandas(built_lakehouse, spark, user_events):
    assert spark.table("sparkify.users").count() == user_events["userId"].nunique()
    assert spark.table("sparkify.sessions").count() == reference_session_count(user_events)
    assert spark.table("sparkify.daily_activity").count() == len(
        user_events[["userId", "event_date"]].drop_duplicates()
    )
    churned = user_events.loc[user_events["page"] == "Cancellation Confirmation", "userId"].nunique()
    assert spark.table("sparkify.users").where("is_churned").count() == churned


def test_user_feature_rows_and_sample_match_pandas(built_lakehouse, spark, user_events):
    expected = reference_features(user_events)
    columns = list(expected.columns)
    actual = spark.table("sparkify.user_features").select(*columns).toPandas()
    actual["as_of_date"] = pd.to_datetime(actual["as_of_date"])
    key = ["user_id", "as_of_date"]
    assert len(actual) == len(expected)
    merged = expected.merge(actual, on=key, how="outer", suffixes=("_pandas", "_dbt"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"][key].head()
    sample = merged.sample(n=min(300, len(merged)), random_state=7)
    for column in columns[2:]:
        np.testing.assert_allclose(
            sample[f"{column}_dbt"].astype(float), sample[f"{column}_pandas"].astype(float),
            rtol=1e-9, equal_nan=True, err_msg=column,
        )


def test_event_at_exactly_as_of_is_not_a_feature(built_lakehouse, spark, sample_events):
    """Every row's lifetime song count equals the NextSong events strictly before as_of, counted by
    pandas from the raw log (the unit test test_event_at_cutoff_is_excluded_from_features puts an
    event exactly at as_of)."""
    rows = spark.table("sparkify.user_features").select("user_id", "as_of_at", "songs_lifetime").toPandas()
    songs = sample_events[(sample_events["page"] == "NextSong") & (sample_events["userId"] != "")]
    times = {user: np.sort(group["ts"].to_numpy()) for user, group in songs.groupby("userId")}
    as_of_ms = rows["as_of_at"].astype("datetime64[ms]").astype("int64").to_numpy()
    before = [np.searchsorted(times.get(u, np.array([])), t, side="left") for u, t in zip(rows["user_id"], as_of_ms)]
    assert not rows.empty
    assert rows["songs_lifetime"].astype(int).tolist() == [int(n) for n in before]


# --- configuration errors ---------------------------------------------------------------------

def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sparkify.dbt", "build"], capture_output=True, text=True,
        cwd=cfg.PROJECT_ROOT, env={**os.environ, **env}, timeout=120,
    )


@pytest.mark.parametrize("make_path", ["missing", "empty"])
def test_missing_or_empty_input_fails_naming_the_path(tmp_path, make_path):
    path = tmp_path / "events.json"
    if make_path == "empty":
        path.write_text("")
    result = run_cli({"SPARKIFY_HOME": str(tmp_path / "home"), "SPARKIFY_EVENTS": str(path)})
    assert result.returncode == 2
    assert str(path) in result.stderr


def test_second_process_on_the_same_metastore_gets_a_clear_error(spark, fixture_files):
    result = run_cli({
        "SPARKIFY_HOME": str(fixture_files.settings.home),
        "SPARKIFY_EVENTS": str(fixture_files.raw_dir),
        "SPARKIFY_TABLE_FORMAT": fixture_files.settings.table_format.name,
    })
    assert result.returncode == 2
    assert "is in use by" in result.stderr and "one Spark process at a time" in result.stderr
