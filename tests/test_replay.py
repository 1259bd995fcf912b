"""Issue 25's proof: a lakehouse fed day by day, then a late file, equals a `--full-refresh` build on the same
files after every load, row for row, in every table.

The log is a small extract of tests/fixtures/eventsim_sample.json.gz, made here: every third user (by numeric
userId) active in its last four weeks, with the guest lines of every third session. It is delivered as five
files (the first 24 days together, then one file per day) and then a late file: every seventh line of the last
week, held back from its day's file. The test checks that the extract holds a session crossing UTC midnight
from one file into the next and a Cancellation Confirmation, that the daily runs did not rebuild the
incremental models whole, and that the late file changed rows already built.

The session's one SparkSession cannot switch warehouse, so the two lakehouses are two dbt schemas of the
session lakehouse (SPARKIFY_SCHEMA, read by profiles/profiles.yml): `replay_daily` takes a plain `dbt run` as
each file arrives, as a user's daily build does; `replay_full_refresh` is rebuilt from all the files delivered
so far with `dbt run --full-refresh` after each load. `dbt run`, not `dbt build`: the data tests are the main
session's. The replay has its own raw folder, record of checked raw files and dbt target folders, so it leaves
the main session's `sparkify` schema, raw files and partial-parse state alone.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from conftest import BOOKKEEPING as CONFTEST_BOOKKEEPING
from conftest import TABLE_KEYS, dbt
from sparkify import raw_files
from sparkify import settings as cfg

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DAILY = "replay_daily"
REFERENCE = "replay_full_refresh"
DAY_MS = 86_400_000
# The extract: every third user active in the sample's last four weeks. Four weeks, so that user_features has
# as_of dates older than the label horizon (14 days) before the daily files, which a daily run keeps as they were.
WINDOW_DAYS = 28
USER_STRIDE = 3
DAILY_FILES = 4  # the last four days come one file a day, after one file holding the days before
LATE_EVERY = 7  # every seventh line of the last week is held back for the late file
# Columns that say when or from where a row was written: a daily build and a full refresh differ in them.
BOOKKEEPING = {*CONFTEST_BOOKKEEPING, "built_at"}
# Tables that must be built and hold rows (the comparison covers every table and view of the schema).
MODELS = ["stg_sparkify__events", "int_events_sessionized", "sessions", "daily_activity", "users",
          "user_features", "customers"]
# The full-history models. Those the project builds as incremental (users: on Delta only) must, at some load,
# keep rows an earlier run wrote (`updated_at`): daily runs that rebuild them whole would prove nothing.
FULL_HISTORY = ["int_events_sessionized", "sessions", "daily_activity", "users", "user_features"]
KEYS = {**TABLE_KEYS, "customers": ["user_id"]}
NULL = "<null>"


@dataclass
class ReplayLog:
    """The extract, split into the files delivered one after another (the late file last)."""

    files: list[tuple[str, list[str]]]
    events: pd.DataFrame  # every line of the extract, parsed, with the name of the file that delivers it


def replay_log(sample_lines: list[str]) -> ReplayLog:
    events = pd.DataFrame.from_records(json.loads(line) for line in sample_lines)
    events["line"] = sample_lines
    last_day = events["ts"].max() // DAY_MS * DAY_MS
    events = events[events["ts"] >= last_day - (WINDOW_DAYS - 1) * DAY_MS]
    active = sorted(set(events["userId"]) - {""}, key=int)
    guests = (events["userId"] == "") & (events["sessionId"] % USER_STRIDE == 0)
    events = events[events["userId"].isin(active[::USER_STRIDE]) | guests].reset_index(drop=True)
    day = pd.to_datetime(events["ts"] // DAY_MS * DAY_MS, unit="ms").dt.strftime("%Y-%m-%d")
    first_daily = last_day - (DAILY_FILES - 1) * DAY_MS
    first_file = f"events-{day.min()}-to-{pd.Timestamp(first_daily - DAY_MS, unit='ms'):%Y-%m-%d}.json.gz"
    events["file"] = day.map(lambda d: f"events-{d}.json.gz").where(events["ts"] >= first_daily, first_file)
    late = (events["ts"] >= last_day - 6 * DAY_MS) & (events.index % LATE_EVERY == 3)
    events.loc[late, "file"] = f"late-{day[late].min()}-to-{day[late].max()}.json.gz"
    order = [first_file, *sorted(set(events["file"]) - {first_file}, key=lambda f: (f.startswith("late"), f))]
    return ReplayLog([(name, events.loc[events["file"] == name, "line"].tolist()) for name in order], events)


def sessions_across_files(events: pd.DataFrame, gap_minutes: int = 30) -> pd.DataFrame:
    """Consecutive events of one (user, sessionId), at most the session gap apart, on two UTC days delivered
    in two different files (not the late one): sessions the daily builds must join across midnight."""
    users = events[(events["userId"] != "") & ~events["file"].str.startswith("late")]
    ordered = users.sort_values(["userId", "sessionId", "ts", "itemInSession"])
    previous = ordered.shift()
    return ordered[(ordered["userId"] == previous["userId"]) & (ordered["sessionId"] == previous["sessionId"])
                   & (ordered["ts"] - previous["ts"] <= gap_minutes * 60_000)
                   & (ordered["ts"] // DAY_MS != previous["ts"] // DAY_MS) & (ordered["file"] != previous["file"])]


def run_dbt(schema: str, raw: Path, *args: str) -> None:
    """`dbt <args>` on the replay's raw folder, into `schema`, as sparkify/dbt.py runs it (raw files checked
    first), with the replay's own record of checked raw files and dbt target folder."""
    replay = raw.parent
    events = raw_files.spark_glob(str(raw))
    raw_files.check(events, replay)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SPARKIFY_SCHEMA", schema)
        env.setenv("SPARKIFY_EVENTS_GLOB", events)
        env.setenv("SPARKIFY_RAW_FILES", str(replay / cfg.RAW_FILES_NAME))
        env.setenv("DBT_TARGET_PATH", str(replay / schema / "target"))
        env.setenv("DBT_LOG_PATH", str(replay / schema / "logs"))
        dbt(*args)


def canonical(spark, schema: str, table: str) -> pd.DataFrame:
    """A table's rows, sorted, as text that pandas compares exactly: columns in name order without the
    bookkeeping ones, floats to 9 significant digits, arrays, structs and maps as JSON, null as <null>.
    Spark reads the columns as they are (casting every column to text in Spark took 3 to 6 times longer)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType, FloatType, IntegralType, MapType, StructType

    frame = spark.table(f"{schema}.{table}")
    fields = sorted((f for f in frame.schema.fields
                     if f.name not in BOOKKEEPING and not f.name.startswith("source_file")), key=lambda f: f.name)
    nested = (ArrayType, StructType, MapType)
    rows = frame.select([F.to_json(F.col(f"`{f.name}`")).alias(f.name) if isinstance(f.dataType, nested)
                         else F.col(f"`{f.name}`") for f in fields]).toPandas()
    for field in fields:
        values = rows[field.name]
        if isinstance(field.dataType, (DoubleType, FloatType)):
            text = values.map(lambda v: f"{v:.8e}")
        elif isinstance(field.dataType, IntegralType):  # pandas holds a column with nulls as floats
            text = values.map(lambda v: "" if pd.isna(v) else str(int(v)))
        else:
            text = values.astype(str)
        rows[field.name] = text.where(values.notna(), NULL)
    return rows.sort_values(list(rows.columns)).reset_index(drop=True)


def difference(table: str, daily: pd.DataFrame, reference: pd.DataFrame, shown: int = 6) -> str:
    """The rows only one side has (a pandas merge with indicator), with the table's key and the columns in
    which they differ, for the failure message."""
    def numbered(frame: pd.DataFrame) -> pd.DataFrame:  # so that repeated rows are matched one to one
        return frame.assign(_copy=frame.groupby(list(frame.columns)).cumcount())

    merged = numbered(daily).merge(numbered(reference), how="outer", indicator="side")
    only = merged[merged["side"] != "both"].copy()
    only["side"] = only["side"].map({"left_only": "daily only", "right_only": "full refresh only"})
    key = [c for c in KEYS.get(table, []) if c in daily.columns]
    if key:
        only = only.sort_values([*key, "side"])
        varying = [c for c in daily.columns if c not in key and only.groupby(key)[c].nunique().gt(1).any()]
    else:
        varying = list(daily.columns)
    with pd.option_context("display.width", 250, "display.max_columns", 12, "display.max_colwidth", 40):
        rows = only[["side", *key, *varying]].head(shown).to_string(index=False)
    return (f"{table}: {len(daily)} rows built day by day, {len(reference)} by --full-refresh; "
            f"{(only['side'] == 'daily only').sum()} rows only day by day, "
            f"{(only['side'] == 'full refresh only').sum()} only after the full refresh; differing columns: "
            f"{', '.join(varying) if key else 'see rows'}\n{rows}")


def declared_incremental(target: Path) -> set[str]:
    """The models the project materializes as incremental in this table format, from dbt's manifest."""
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    return {node["name"] for node in nodes
            if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"}


def written_by_several_runs(spark, schema: str, tables: list[str]) -> set[str]:
    """The tables holding rows written by more than one dbt run (a rebuild writes every row at once)."""
    query = " union all ".join(f"select '{table}' as name, count(distinct updated_at) as runs from {schema}.{table}"
                               for table in tables)
    return {row["name"] for row in spark.sql(query).collect() if row["runs"] > 1}


def tables_of(spark, schema: str) -> list[str]:
    return sorted(row["tableName"] for row in spark.sql(f"show tables in {schema}").collect()
                  if not row["isTemporary"])


def test_daily_loads_and_a_late_file_equal_a_full_refresh_after_every_load(spark, sample_lines, tmp_path):
    log = replay_log(sample_lines)
    names = [name for name, _ in log.files]
    # What the replay must hold to prove anything: five files before the late one, a late file with lines of
    # days already loaded, a session that crosses midnight from one file into the next, a cancellation.
    assert len(names) >= 6 and names[-1].startswith("late") and all(lines for _, lines in log.files), names
    late_days = set(log.events.loc[log.events["file"] == names[-1], "ts"] // DAY_MS)
    assert late_days <= set(log.events.loc[log.events["file"] != names[-1], "ts"] // DAY_MS)
    assert 20 <= log.events.loc[log.events["userId"] != "", "userId"].nunique() <= 30
    assert len(sessions_across_files(log.events)) > 0
    assert (log.events["page"] == "Cancellation Confirmation").any()

    raw, staged = tmp_path / "replay" / "raw", tmp_path / "staged"
    raw.mkdir(parents=True)
    staged.mkdir()
    for name, lines in log.files:
        with gzip.open(staged / name, "wt", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    before_late: dict[str, pd.DataFrame] = {}
    updated_in_place: set[str] = set()
    for number, name in enumerate(names, start=1):
        shutil.copy(staged / name, raw / name)
        if number == 1:
            for schema in (DAILY, REFERENCE):
                run_dbt(schema, raw, "seed")
        run_dbt(DAILY, raw, "run")
        run_dbt(REFERENCE, raw, "run", "--full-refresh")

        tables = tables_of(spark, DAILY)
        assert tables == tables_of(spark, REFERENCE), f"after {name}"
        assert set(MODELS) <= set(tables), tables
        built = {table: (canonical(spark, DAILY, table), canonical(spark, REFERENCE, table)) for table in tables}
        empty = [table for table in MODELS if built[table][1].empty]
        assert not empty, f"after {name}: no rows in {empty}"
        differing = [difference(table, daily, reference) for table, (daily, reference) in built.items()
                     if not daily.equals(reference)]
        assert not differing, (f"load {number} of {len(names)} ({name}): the daily builds differ from a "
                               "--full-refresh on the same files in\n" + "\n\n".join(differing))
        incremental = sorted(set(FULL_HISTORY) & declared_incremental(raw.parent / DAILY / "target"))
        updated_in_place |= written_by_several_runs(spark, DAILY, incremental)
        if number == len(names) - 1:
            before_late = {table: built[table][0] for table in ("sessions", "daily_activity")}

    # The daily runs were incremental: no incremental model was rebuilt whole at every load.
    assert updated_in_place == set(incremental), (
        f"incremental, but rebuilt whole by every daily run: {sorted(set(incremental) - updated_in_place)}")
    # The late file changed rows that were already built, not only added new ones.
    changed = [table for table, rows in before_late.items()
               if rows.merge(built[table][0], how="left", indicator=True)["_merge"].eq("left_only").any()]
    assert changed, "the late file changed no sessions or daily_activity row built before it"
