"""Shared fixtures: one temporary lakehouse, one SparkSession and one dbt build per test session.

The fixture data is tests/fixtures/eventsim_sample.json.gz (a third of es_small's users, from the real
eventsim simulator; see tests/fixtures/extract_sample.py) split into two files, everything before the
last day and the last day, plus a file of crafted bad lines. The first build loads the first
and the bad file; `incremental_build` then adds the last day; `rerun_build` runs once more with no
new file. dbt runs in this process, so it reuses the same SparkSession (one JVM for the suite).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from sparkify import settings as cfg

# In the repository, so that a fresh clone tests everything; a missing file fails the tests that need it.
SAMPLE = Path(__file__).resolve().parent / "fixtures" / "eventsim_sample.json.gz"
# Events from this instant on form the "new day" file that the incremental build adds.
NEW_DAY_START_MS = int(pd.Timestamp("2018-12-02", tz="UTC").timestamp() * 1000)

# Crafted bad lines and the reason the bronze model must give for each.
BAD_LINES = {
    '{"ts":1538352117000,"userId":"30","sessionId":29,"page":"NextSong"': "malformed JSON",
    '{"userId":"30","sessionId":29,"page":"Home","auth":"Logged In","method":"GET","status":200,'
    '"level":"paid","itemInSession":1}': "missing ts",
    '{"ts":"yesterday","userId":"30","sessionId":29,"page":"Home","auth":"Logged In","method":"GET",'
    '"status":200,"level":"paid","itemInSession":1}': "ts is not a valid bigint: yesterday",
    '{"ts":1538352117000,"userId":"30","sessionId":29,"page":"Dance Floor","auth":"Logged In",'
    '"method":"GET","status":200,"level":"paid","itemInSession":1}': "page not accepted: Dance Floor",
    '{"ts":1538352117000,"userId":"30","sessionId":29,"page":"Home","auth":"Logged In","method":"GET",'
    '"status":200,"level":"platinum","itemInSession":1}': "level not accepted: platinum",
    "[1, 2, 3]": "malformed JSON",
    '{"ts":1538352117000,"userId":"30","sessionId":29,"page":"Home","auth":"Logged In","method":"GET",'
    '"status":200,"level":"paid","itemInSession":1,"registration":1538173362000000000}':
        "registration out of range: 1538173362000000000",
    '{"ts":1538352117000,"userId":"30","sessionId":29,"page":"NextSong","auth":"Logged In","method":"PUT",'
    '"status":200,"level":"paid","itemInSession":1,"length":"NaN"}': "length is not a finite non-negative number: NaN",
    '{"ts":1538352117000,"userId":"30","sessionId":29,"page":"Home","auth":"Logged Out","method":"GET",'
    '"status":200,"level":"paid","itemInSession":1}': "auth Logged Out contradicts a userId",
    '{"ts":1538352117000,"userId":"","sessionId":29,"page":"Home","auth":"Logged In","method":"GET",'
    '"status":200,"level":"paid","itemInSession":1}': "auth Logged In contradicts an empty userId",
}
# A line whose firstName byte 0xEB is not UTF-8: quarantined with its original bytes in hex.
NOT_UTF8_LINE = (b'{"ts":1538352117000,"userId":"30","sessionId":29,"page":"Home","auth":"Logged In",'
                 b'"method":"GET","status":200,"level":"paid","itemInSession":1,"firstName":"Zo\xeb"}')
BAD_LINES[NOT_UTF8_LINE.hex().upper()] = "not valid UTF-8 (raw_line holds its bytes in hex)"


@dataclass
class Fixture:
    """Where the test lakehouse and its raw files are."""

    settings: cfg.Settings
    raw_dir: Path
    base_file: Path
    new_day_file: Path
    bad_file: Path
    duplicated_lines: list[str]


def read_jsonl(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


@pytest.fixture(scope="session")
def sample_lines() -> list[str]:
    return read_jsonl(SAMPLE)


@pytest.fixture(scope="session")
def sample_events(sample_lines) -> pd.DataFrame:
    """The sample parsed by pandas, independently of Spark: the reference for the checks."""
    return pd.DataFrame.from_records(json.loads(line) for line in sample_lines)


@pytest.fixture(scope="session")
def fixture_files(tmp_path_factory, sample_lines) -> Fixture:
    root = tmp_path_factory.mktemp("lakehouse")
    raw = root / "raw"
    raw.mkdir()
    staged = root / "staged"
    staged.mkdir()
    base, new_day = [], []
    for line in sample_lines:
        (new_day if json.loads(line)["ts"] >= NEW_DAY_START_MS else base).append(line)
    # The same two events appear again in the bad file: exact duplicates to be removed.
    duplicated = base[100:102]
    base_file = raw / "events-until-2018-12-01.json.gz"
    with gzip.open(base_file, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(base) + "\n")
    bad_file = raw / "bad-lines.json"
    text_lines = [line for line in BAD_LINES if line != NOT_UTF8_LINE.hex().upper()]
    bad_file.write_bytes("\n".join([*text_lines, *duplicated]).encode("utf-8") + b"\n" + NOT_UTF8_LINE + b"\n")
    new_day_file = staged / "events-2018-12-02.json"
    new_day_file.write_text("\n".join(new_day) + "\n", encoding="utf-8")
    settings = cfg.load({
        "SPARKIFY_HOME": str(root / "home"),
        "SPARKIFY_EVENTS": str(raw),
        # Delta by default, as `make build`; tests/test_parquet.py re-runs the lakehouse tests on Parquet.
        "SPARKIFY_TABLE_FORMAT": os.environ.get("SPARKIFY_TABLE_FORMAT") or "delta",
        "SPARKIFY_DRIVER_MEMORY": os.environ.get("SPARKIFY_DRIVER_MEMORY", "4g"),
    })
    return Fixture(settings, raw, base_file, new_day_file, bad_file, duplicated)


@pytest.fixture(scope="session")
def spark(fixture_files):
    """The one SparkSession of the test session, configured from the dbt profile."""
    from sparkify.dbt import PREPARED_VARIABLE
    from sparkify.spark import get_session, metastore_lock

    settings = fixture_files.settings
    SESSION_SETTINGS.append(settings)
    cfg.apply(settings)
    os.environ.setdefault("SPARKIFY_LOG4J", str(cfg.PROFILES_DIR / "log4j2.properties"))
    with metastore_lock(settings.home):
        os.environ[PREPARED_VARIABLE] = str(os.getpid())  # what sparkify/dbt.py sets once it holds the lock
        session = get_session(settings, app_name="sparkify-tests")
        yield session
        session.stop()


# The settings of the session lakehouse, once the `spark` fixture has started.
SESSION_SETTINGS: list[cfg.Settings] = []


def dbt(*args: str) -> None:
    """Run dbt in this process (it reuses the active SparkSession); fail the test on error. As
    sparkify/dbt.py does before any dbt process, the raw files are checked first."""
    from dbt.cli.main import dbtRunner

    from sparkify.dbt import check_raw_files

    check_raw_files(SESSION_SETTINGS[-1])
    result = dbtRunner().invoke([*args, "--project-dir", str(cfg.PROJECT_ROOT)])
    if not result.success:
        failures = [
            f"{r.node.name}: {r.status} {r.message}"
            for r in (result.result or [])
            if str(r.status) not in ("success", "pass")
        ]
        raise AssertionError(f"dbt {' '.join(args)} failed: {result.exception or failures}")


def snapshot(spark, tables: list[str]) -> dict[str, pd.DataFrame]:
    """Tables as pandas frames, to compare one build with the next."""
    return {name: spark.table(f"sparkify.{name}").toPandas() for name in tables}


# The key of each table: rows are compared in this order.
TABLE_KEYS = {
    "bronze_events": ["source_file", "line_hash"],
    "stg_sparkify__events": ["event_id"],
    "users": ["user_id"],
    "sessions": ["session_key"],
    "daily_activity": ["user_id", "activity_date"],
    "user_features": ["user_id", "as_of_date"],
    "int_events_sessionized": ["event_id"],
    "quarantined_lines": ["source_file", "line_hash"],
    "sparkify_pages": ["page"],
    "rejected_files": ["path"],
}


# Columns that say when a row was loaded or written: two builds of the same files differ in them.
BOOKKEEPING = ("loaded_at", "updated_at")


def delta_rows(path: Path, version: int | None = None) -> pd.DataFrame:
    """A table's rows as deltalake reads them, in key order, without load and write times and nested columns."""
    from deltalake import DeltaTable

    frame = DeltaTable(str(path), version=version).to_pandas()
    nested = [c for c in frame.columns if frame[c].dtype == object
              and frame[c].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any()]
    frame = frame.drop(columns=[c for c in [*BOOKKEEPING, *nested] if c in frame.columns])
    return frame[sorted(frame.columns)].sort_values(TABLE_KEYS[path.name]).reset_index(drop=True)


SNAPSHOT_TABLES = ["bronze_events", "stg_sparkify__events", "users", "sessions", "daily_activity", "user_features"]


@pytest.fixture(scope="session")
def first_build(spark, fixture_files):
    """dbt build on everything but the last day (plus the bad lines)."""
    dbt("build")
    return snapshot(spark, SNAPSHOT_TABLES)


@pytest.fixture(scope="session")
def incremental_build(first_build, spark, fixture_files):
    """Add the last day's file and build again: only that file may be read."""
    shutil.copy(fixture_files.new_day_file, fixture_files.raw_dir / fixture_files.new_day_file.name)
    dbt("build")
    return snapshot(spark, SNAPSHOT_TABLES)


@pytest.fixture(scope="session")
def rerun_build(incremental_build, spark):
    """A build with no new file: nothing may change."""
    dbt("build")
    return snapshot(spark, SNAPSHOT_TABLES)


@pytest.fixture(scope="session")
def built_lakehouse(rerun_build, fixture_files) -> cfg.Settings:
    """Settings of the fully built test lakehouse (all of the sample plus the bad lines)."""
    return fixture_files.settings
