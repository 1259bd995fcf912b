"""Fault injection: builds killed with SIGKILL at four moments on Delta and three on Parquet. Every
build after a kill must get past the moment of the next kill (a build that failed would never start
that node), and the last one must succeed with no manual step, its data tests (reconciliation
included) passing. Then every table the models build must hold the same rows as the session's
build of the same files, which was never killed.

The moments: while bronze is first written, while user_features (a table model) is written, during
the data tests, while a new day's file is merged into bronze, and (on Parquet) during
`--full-refresh --select user_features`, which once left a folder that failed every later build;
tests/test_delta.py kills that full refresh on Delta three times, with a reader watching.
Each killed build runs until dbt starts the node named, then a moment longer, and the whole process
group (Python and its JVM) is killed, as the kernel's OOM killer or a `kill -9` would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from conftest import BOOKKEEPING
from sparkify import settings as cfg

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# (node dbt starts, seconds later the build is killed, extra dbt arguments)
BRONZE = ("model sparkify.bronze_events", 2.0, [])
USER_FEATURES = ("model sparkify.user_features", 0.5, [])
DATA_TESTS = ("test assert_raw_lines_reconcile", 0.2, [])
FULL_REFRESH = ("model sparkify.user_features", 1.0, ["--full-refresh", "--select", "user_features"])
# Each chain: kills on the first files, the new day's file arrives, more kills, then one build that must
# succeed. Parquet gets the moments where its writes differ (a table model's drop-and-create, bronze's
# partition overwrite, the full refresh). `--select user_features` needs its parents built, so a kill
# inside user_features comes first.
CHAINS = {
    "delta": ([BRONZE, USER_FEATURES, DATA_TESTS], [BRONZE]),
    "parquet": ([USER_FEATURES], [BRONZE, FULL_REFRESH]),
}
# The tables (not views) the dbt models build from the raw files alone (customers also reads the ML scores).
COMPARED = ["bronze_events", "stg_sparkify__events", "int_events_sessionized",
            "sessions", "daily_activity", "users", "user_features", "rejected_files", "sparkify_pages"]


def environment(home: Path, raw: Path, table_format: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DBT_"))}
    env.update(SPARKIFY_HOME=str(home), SPARKIFY_EVENTS=str(raw), SPARKIFY_TABLE_FORMAT=table_format)
    return env


def build(home: Path, raw: Path, table_format: str, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "sparkify.dbt", "build", *args], cwd=cfg.PROJECT_ROOT,
                            env=environment(home, raw, table_format), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"build after a kill failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"


def killed_build(home: Path, raw: Path, table_format: str, node: str, delay: float, args: list[str]) -> str:
    """Start a build, SIGKILL its process group `delay` seconds after dbt starts `node`; its output.
    Unless the kill is meant to land in a data test, the killed build leaves the tests out: they write
    nothing, so the build reaches the same state at `node` sooner (the build after the kills runs them all)."""
    if not node.startswith("test "):
        args = [*args, "--exclude", "resource_type:test", "resource_type:unit_test"]
    process = subprocess.Popen([sys.executable, "-m", "sparkify.dbt", "build", *args], cwd=cfg.PROJECT_ROOT,
                               env=environment(home, raw, table_format), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output: list[str] = []
    started = threading.Event()

    def read() -> None:
        for line in process.stdout:
            output.append(line)
            if " START " in line and f" {node} " in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(timeout=900), f"the build never started {node}:\n{''.join(output)[-3000:]}"
        time.sleep(delay)
        assert process.poll() is None, f"the build ended before the kill:\n{''.join(output)[-3000:]}"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        reader.join(timeout=30)
        wait_for_group_to_die(process.pid)
    return "".join(output)


def wait_for_group_to_die(group: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"process group {group} outlived SIGKILL")


def rows(table_dir: Path) -> pd.DataFrame:
    """A table's rows, Delta or Parquet, as strings in a fixed order, without load times."""
    if (table_dir / "_delta_log").is_dir():
        from deltalake import DeltaTable

        table = DeltaTable(str(table_dir)).to_pyarrow_table()
    else:
        hive = ds.HivePartitioning.discover(null_fallback="__HIVE_DEFAULT_PARTITION__")
        table = ds.dataset(str(table_dir), format="parquet", partitioning=hive).to_table()
    # load and write times differ by nature, and the session's files are copies made at other times
    columns = sorted(c for c in table.column_names if c not in (*BOOKKEEPING, "source_file_modified_at"))
    frame = pd.DataFrame({c: [str(plain(v)) for v in table.column(c).to_pylist()] for c in columns})
    for column in {"source_file", "path"} & set(columns):  # the two builds read copies in other folders
        frame[column] = frame[column].map(lambda v: v.rsplit("/", 1)[-1])
    return frame.sort_values(columns).reset_index(drop=True)


def plain(value):
    """A value as both formats can give it: timestamps (also inside lists and structs) in UTC without a
    zone, as Parquet's are (Delta's carry UTC), whatever their unit; floats to 12 significant digits, since a
    sum of doubles differs in its last bits with the order Spark reads the rows in."""
    if isinstance(value, float):
        return f"{value:.11e}"
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
        return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def tables(home: Path) -> dict[str, pd.DataFrame]:
    schema = home / "warehouse" / "sparkify.db"
    return {name: rows(schema / name) for name in COMPARED}


@pytest.fixture(scope="module")
def clean(built_lakehouse) -> dict[str, pd.DataFrame]:
    """The session's build of the same files, never killed."""
    return tables(built_lakehouse.home)


@pytest.mark.parametrize("table_format", list(CHAINS))
def test_builds_killed_at_many_moments_recover_to_the_rows_of_a_clean_build(
    table_format, fixture_files, clean, tmp_path_factory
):
    from sparkify.spark import remove_uncommitted_tables

    raw = tmp_path_factory.mktemp(f"kills-{table_format}-raw")
    for path in (fixture_files.base_file, fixture_files.bad_file):
        shutil.copy2(path, raw / path.name)  # copies keep their mtime, which bronze records
    home = tmp_path_factory.mktemp(f"kills-{table_format}") / "home"
    before_new_day, after_new_day = CHAINS[table_format]

    for node, delay, args in before_new_day:
        killed_build(home, raw, table_format, node, delay, args)
    shutil.copy2(fixture_files.new_day_file, raw / fixture_files.new_day_file.name)
    for node, delay, args in after_new_day:
        killed_build(home, raw, table_format, node, delay, args)
    build(home, raw, table_format)

    # the build cleaned up after the kills, and what it leaves does not look like debris
    assert remove_uncommitted_tables(cfg.load({"SPARKIFY_HOME": str(home), "SPARKIFY_TABLE_FORMAT": table_format})) == []
    schema = home / "warehouse" / "sparkify.db"
    assert {name for name in COMPARED if (schema / name / "_delta_log").is_dir()} == (
        set(COMPARED) if table_format == "delta" else set())
    after = tables(home)
    for name, expected in clean.items():
        pd.testing.assert_frame_equal(after[name], expected, obj=f"{table_format} {name}")
