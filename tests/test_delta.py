"""Delta Lake, the default format: atomic rebuilds, merges, time travel, upkeep and clear errors.

The session lakehouse (conftest) is built on Delta with a first load, an incremental day and a
no-change re-run. Here it is compared with a clean build of the same files in a second lakehouse,
and that second lakehouse is then rebuilt and killed with SIGKILL, while tables are read the way
the dashboard reads them: with deltalake, no JVM. Builds run as separate processes, like `make build`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from conftest import SNAPSHOT_TABLES, delta_rows as rows
from sparkify import settings as cfg
from sparkify.spark import remove_uncommitted_tables

pytestmark = [pytest.mark.delta, pytest.mark.spark, pytest.mark.slow]

REBUILD = ["build", "--full-refresh", "--select", "user_features", "--exclude", "test_type:unit"]
MODEL_START = "START sql incremental model sparkify.user_features"


def table_dir(settings: cfg.Settings, name: str) -> Path:
    return settings.warehouse / f"{cfg.SCHEMA}.db" / name


def cli(env: dict[str, str], *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparkify.dbt", *args], cwd=cfg.PROJECT_ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def clean_build(built_lakehouse, fixture_files, tmp_path_factory) -> tuple[cfg.Settings, dict[str, str]]:
    """All the session lakehouse's raw files built at once into a second lakehouse."""
    home = tmp_path_factory.mktemp("clean") / "home"
    env = {"SPARKIFY_HOME": str(home), "SPARKIFY_EVENTS": str(fixture_files.raw_dir),
           "SPARKIFY_TABLE_FORMAT": "delta"}
    result = cli(env, "build", timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "table format delta" in result.stderr
    return cfg.load(env), env


def test_session_lakehouse_tables_are_delta(built_lakehouse, spark):
    assert built_lakehouse.table_format.name == "delta"
    for name in SNAPSHOT_TABLES:
        path = table_dir(built_lakehouse, name)
        assert (path / "_delta_log").is_dir(), name
        assert DeltaTable(str(path)).to_pyarrow_table().num_rows == spark.table(f"sparkify.{name}").count(), name


def test_incremental_day_and_rerun_give_the_rows_of_a_clean_build(built_lakehouse, clean_build):
    clean, _ = clean_build
    for name in SNAPSHOT_TABLES:
        pd.testing.assert_frame_equal(rows(table_dir(built_lakehouse, name)), rows(table_dir(clean, name)),
                                      obj=name)


def test_time_travel_reads_a_past_version_of_user_features(built_lakehouse, spark):
    from models_ml.lakehouse import table_version

    path = table_dir(built_lakehouse, "user_features")
    latest = DeltaTable(str(path)).version()
    assert table_version(spark, "user_features") == latest
    first = DeltaTable(str(path), version=0).to_pyarrow_table().num_rows
    assert spark.sql("select * from sparkify.user_features version as of 0").count() == first


def test_switching_format_on_a_delta_lakehouse_is_refused_clearly(clean_build):
    _, env = clean_build
    result = cli({**env, "SPARKIFY_TABLE_FORMAT": "parquet"}, "build", timeout=120)
    assert result.returncode == 2
    assert "holds delta tables" in result.stderr and "make clean build" in result.stderr
    assert "Traceback" not in result.stderr


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for(log: Path, text: str, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, f"the build ended before {text!r}: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {text!r} after {timeout}s"
        time.sleep(0.1)


def test_killed_rebuilds_keep_the_last_version_and_the_next_build_succeeds(clean_build, tmp_path):
    settings, env = clean_build
    path = table_dir(settings, "user_features")
    before, before_version = rows(path), DeltaTable(str(path)).version()
    command = [sys.executable, "-m", "sparkify.dbt", *REBUILD]
    # Kill while the JVM starts, as the model starts, and in the middle of writing it.
    for wait_text, delay in [(None, 4.0), (MODEL_START, 0.3), (MODEL_START, 4.0)]:
        log = tmp_path / f"killed-{delay}.log"
        with open(log, "w") as out:
            process = subprocess.Popen(command, cwd=cfg.PROJECT_ROOT, env={**os.environ, **env},
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        if wait_text:
            wait_for(log, wait_text, process)
        time.sleep(delay)
        assert process.poll() is None, f"the rebuild finished before the kill: {log.read_text()[-2000:]}"
        kill_group(process)
        pd.testing.assert_frame_equal(rows(path), before, obj=f"user_features after a kill ({wait_text}, {delay}s)")
        assert DeltaTable(str(path)).version() >= before_version

    # The next build succeeds with no manual step, and a reader meanwhile always sees a whole version.
    seen: list[tuple[int, int]] = []
    mismatches: list[int] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            table = DeltaTable(str(path))
            frame = rows(path, table.version())
            seen.append((table.version(), len(frame)))
            if not frame.equals(before):
                mismatches.append(table.version())
            time.sleep(0.2)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = cli(env, *REBUILD, timeout=1200)
    finally:
        done.set()
        thread.join()
    assert result.returncode == 0, result.stdout[-3000:]
    assert mismatches == [], f"a reader saw other rows at versions {mismatches}"
    assert len({version for version, _ in seen}) >= 2, f"no new version committed while reading: {seen[-3:]}"
    pd.testing.assert_frame_equal(rows(path), before)


def test_uncommitted_folders_are_removed_and_committed_tables_kept(tmp_path):
    settings = cfg.load({"SPARKIFY_HOME": str(tmp_path), "SPARKIFY_TABLE_FORMAT": "delta"})
    schema = settings.warehouse / f"{cfg.SCHEMA}.db"
    write_deltalake(str(schema / "kept"), pa.table({"x": [1, 2]}))
    (schema / "killed").mkdir()
    pq.write_table(pa.table({"x": [3]}), schema / "killed" / "part-00000.snappy.parquet")
    assert remove_uncommitted_tables(settings) == [schema / "killed"]
    assert sorted(p.name for p in schema.iterdir()) == ["kept"]
    assert DeltaTable(str(schema / "kept")).to_pyarrow_table().num_rows == 2


def test_maintain_compacts_and_keeps_every_row(built_lakehouse, spark):
    from sparkify.maintain import maintain

    counts = {name: spark.table(f"sparkify.{name}").count() for name in SNAPSHOT_TABLES}
    report = {name: (before, after) for name, before, after in maintain(built_lakehouse, 168)}
    assert set(SNAPSHOT_TABLES) <= set(report)
    for name in SNAPSHOT_TABLES:
        before, after = report[name]
        assert after.live <= before.live, name
        assert after.on_disk >= after.live, name  # 7-day retention: nothing a recent version needs goes
        assert spark.table(f"sparkify.{name}").count() == counts[name], name
        assert DeltaTable(str(table_dir(built_lakehouse, name))).to_pyarrow_table().num_rows == counts[name]


def test_jars_that_cannot_be_fetched_get_one_clear_message(tmp_path):
    env = {**os.environ, "SPARKIFY_MAVEN_REPO": "http://127.0.0.1:9/maven2",
           "SPARKIFY_MAVEN_LOCAL_REPO": str(tmp_path / "m2"), "SPARKIFY_TABLE_FORMAT": "auto"}
    env.pop("SPARKIFY_DELTA_JARS", None)
    result = subprocess.run([sys.executable, "-m", "sparkify.delta_jars", "--dir", str(tmp_path / "jars")],
                            cwd=cfg.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert cfg.delta_maven_coordinates() in result.stderr
    assert "SPARKIFY_DELTA_JARS" in result.stderr and "SPARKIFY_TABLE_FORMAT=parquet" in result.stderr
    assert "Traceback" not in result.stderr and "\tat " not in result.stderr
    assert not (tmp_path / "jars").exists()
