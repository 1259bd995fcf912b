"""Configuration: table format choice, Java check, input paths, the metastore lock. No JVM."""

from __future__ import annotations

import gzip
import json
import os
import stat
from pathlib import Path

import pytest

from sparkify import settings as cfg
from sparkify.spark import MetastoreBusy, metastore_lock, profile_parameters


def test_auto_picks_parquet_without_delta_jars(tmp_path, monkeypatch):
    monkeypatch.setattr(cfg, "DELTA_JAR_CACHE", tmp_path / "no-jars")
    chosen = cfg.resolve_table_format("auto", None)
    assert chosen.name == "parquet"
    assert "no Delta Lake jars" in chosen.reason


def test_auto_picks_delta_from_a_local_jar_directory(tmp_path):
    jars = [tmp_path / "delta-kernel-api-4.4.0.jar", tmp_path / "delta-spark_4.2_2.13-4.4.0.jar",
            tmp_path / "delta-storage-4.4.0.jar"]
    for jar in jars:
        jar.write_bytes(b"")
    chosen = cfg.resolve_table_format("auto", str(tmp_path))
    assert chosen.name == "delta"
    assert chosen.jars == tuple(str(j) for j in jars)


def test_delta_without_jars_says_how_to_get_them_or_fall_back(tmp_path, monkeypatch):
    monkeypatch.setattr(cfg, "DELTA_JAR_CACHE", tmp_path / "no-jars")
    with pytest.raises(cfg.SettingsError) as error:
        cfg.resolve_table_format("delta", None)
    message = str(error.value)
    assert "make venv" in message and "SPARKIFY_DELTA_JARS" in message
    assert "SPARKIFY_TABLE_FORMAT=parquet" in message
    assert cfg.delta_maven_coordinates() in message


def test_delta_coordinates_match_the_installed_pyspark():
    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    group, artifact, version = cfg.delta_maven_coordinates().split(":")
    assert (group, artifact) == ("io.delta", f"delta-spark_{spark_minor}_2.13")
    from importlib.metadata import version as installed

    assert version.split(".")[:2] == installed("delta-spark").split(".")[:2]


def test_unknown_table_format_and_empty_jar_dir_are_errors(tmp_path):
    with pytest.raises(cfg.SettingsError, match="SPARKIFY_TABLE_FORMAT='orc'"):
        cfg.resolve_table_format("orc", None)
    with pytest.raises(cfg.SettingsError, match="no delta-spark"):
        cfg.resolve_table_format("auto", str(tmp_path))


def test_events_path_accepts_file_directory_and_glob(tmp_path):
    (tmp_path / "a.json").write_text('{"ts": 1}\n')
    with gzip.open(tmp_path / "b.json.gz", "wt") as handle:
        handle.write('{"ts": 2}\n')
    assert cfg.events_glob(str(tmp_path)) == f"{tmp_path}/*.{{json,json.gz}}"
    assert cfg.events_glob(str(tmp_path / "a.json")) == f"{tmp_path}/a.json"
    assert cfg.events_glob(f"{tmp_path}/*.gz") == f"{tmp_path}/*.gz"


def test_events_path_errors_name_the_path(tmp_path):
    with pytest.raises(cfg.SettingsError, match=f"SPARKIFY_EVENTS={tmp_path}/nope.json: no such"):
        cfg.events_glob(str(tmp_path / "nope.json"))
    with pytest.raises(cfg.SettingsError, match="holds no .json"):
        cfg.events_glob(str(tmp_path))
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(cfg.SettingsError, match="empty"):
        cfg.events_glob(str(tmp_path / "empty.json"))


def test_missing_or_old_java_fails_with_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(cfg.SettingsError, match="apt-get install openjdk-17"):
        cfg.check_java()
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(cfg.SettingsError, match="Found Java 11"):
        cfg.check_java()


def test_the_class_archive_is_used_only_for_the_java_it_was_built_for(tmp_path, monkeypatch):
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_text("")
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    assert cfg.archive_options(archive_dir) == ""  # nothing built yet
    manifest = archive_dir / cfg.JVM_ARCHIVE_MANIFEST
    manifest.write_text(json.dumps({"java": str((java_home / "bin" / "java").resolve()), "archive": "spark.jsa"}))
    assert cfg.archive_options(archive_dir) == ""  # the manifest names a file that is not there
    (archive_dir / "spark.jsa").write_bytes(b"x")
    assert cfg.archive_options(archive_dir) == f"-XX:SharedArchiveFile={archive_dir / 'spark.jsa'} -Xshare:auto"
    manifest.write_text(json.dumps({"java": "/another/jdk/bin/java", "archive": "spark.jsa"}))
    assert cfg.archive_options(archive_dir) == ""
    manifest.write_text(json.dumps({"java": str((java_home / "bin" / "java").resolve()), "archive": None}))
    assert cfg.archive_options(archive_dir) == ""  # that JVM could not dump one
    manifest.write_text("{not json")
    assert cfg.archive_options(archive_dir) == ""


def test_driver_java_options_from_the_environment_win_even_when_empty(tmp_path):
    env = {"SPARKIFY_HOME": str(tmp_path), "SPARKIFY_TABLE_FORMAT": "parquet"}
    assert cfg.load({**env, cfg.DRIVER_JAVA_OPTIONS: "-Xss4m"}).driver_java_options == "-Xss4m"
    assert cfg.load({**env, cfg.DRIVER_JAVA_OPTIONS: ""}).driver_java_options == ""
    options = profile_parameters(cfg.load({**env, cfg.DRIVER_JAVA_OPTIONS: "-Xss4m"}))["spark.driver.extraJavaOptions"]
    assert options.startswith("-Xss4m -XX:+UseParallelGC ")


def test_metastore_lock_refuses_a_second_holder(tmp_path):
    with metastore_lock(tmp_path):
        with pytest.raises(MetastoreBusy, match=f"pid {os.getpid()}"):
            with metastore_lock(tmp_path):
                pass
    with metastore_lock(tmp_path):  # released after the first holder left
        pass


def test_profile_puts_warehouse_and_metastore_under_home(tmp_path):
    settings = cfg.load({"SPARKIFY_HOME": str(tmp_path), "SPARKIFY_TABLE_FORMAT": "parquet"})
    params = profile_parameters(settings)
    assert params["spark.sql.warehouse.dir"] == f"{tmp_path}/warehouse"
    assert params["spark.hadoop.javax.jdo.option.ConnectionURL"] == (
        f"jdbc:derby:;databaseName={tmp_path}/metastore_db;create=true"
    )
    assert params["spark.sql.catalog.spark_catalog"] == "builtin"
    assert params["spark.sql.session.timeZone"] == "UTC"


@pytest.mark.parametrize("argv, expected", [
    (["/p/.venv/bin/dbt", "build", "-s", "users+"], ["build", "-s", "users+"]),
    (["/p/.venv/bin/python", "/p/.venv/bin/dbt", "run"], ["run"]),
    (["/p/.venv/bin/python", "-m", "dbt", "test"], ["test"]),
    (["/p/.venv/bin/python", "-X", "dev", "-m", "dbt.cli.main", "seed"], ["seed"]),
    (["/p/.venv/bin/python", "-m", "sparkify.dbt", "build"], None),
    (["/p/.venv/bin/python", "-c", "print('dbt')"], None),
    (["/p/.venv/bin/pytest", "tests"], None),
])
def test_venv_hook_recognises_a_dbt_process(argv, expected):
    from sparkify.venv_hook import dbt_arguments

    assert dbt_arguments(argv) == expected


@pytest.mark.parametrize("args, command", [
    (["build", "--select", "users+"], "build"),
    (["--log-level", "debug", "run"], "run"),
    (["--no-use-colors", "docs", "generate"], "docs"),
    (["docs", "serve", "--port", "8080"], "docs serve"),
    (["--version"], ""),
])
def test_dbt_command_skips_global_options(args, command):
    from sparkify.dbt import dbt_command

    assert dbt_command(args) == command


def test_a_killed_parquet_writers_staging_folders_are_removed_under_the_lock(tmp_path):
    from sparkify.spark import remove_uncommitted_tables

    settings = cfg.load({"SPARKIFY_HOME": str(tmp_path), "SPARKIFY_TABLE_FORMAT": "parquet"})
    table = settings.table_path("churn_scores")
    (table / "as_of_date=2018-11-26").mkdir(parents=True)
    (table / "as_of_date=2018-11-26" / "part-0.parquet").write_bytes(b"committed")
    (table / "_SUCCESS").touch()
    for debris in ("_temporary/0/task", ".spark-staging-1234"):
        (table / debris).mkdir(parents=True)
    removed = remove_uncommitted_tables(settings)
    assert sorted(p.name for p in removed) == [".spark-staging-1234", "_temporary"]
    assert sorted(p.name for p in table.iterdir()) == ["_SUCCESS", "as_of_date=2018-11-26"]


def test_a_parquet_table_folder_whose_first_write_never_committed_is_removed(tmp_path):
    from sparkify.spark import remove_uncommitted_tables

    settings = cfg.load({"SPARKIFY_HOME": str(tmp_path), "SPARKIFY_TABLE_FORMAT": "parquet"})
    killed_ctas = settings.table_path("user_features")
    (killed_ctas / "_temporary" / "0").mkdir(parents=True)
    killed_commit = settings.table_path("sessions")  # some files moved in, _SUCCESS not yet written
    killed_commit.mkdir(parents=True)
    (killed_commit / "part-0.parquet").write_bytes(b"half")
    empty = settings.table_path("users")  # an empty folder does not stop a CREATE TABLE: left alone
    empty.mkdir(parents=True)
    assert sorted(remove_uncommitted_tables(settings)) == sorted([killed_ctas, killed_commit])
    assert not killed_ctas.exists() and not killed_commit.exists() and empty.is_dir()


def parquet_lakehouse(home: Path) -> list[Path]:
    """A lakehouse a Parquet build wrote: its format marker, a table and a partitioned table; their files."""
    (home / "table_format").parent.mkdir(parents=True, exist_ok=True)
    (home / "table_format").write_text("parquet\n")
    settings = cfg.load({"SPARKIFY_HOME": str(home), "SPARKIFY_TABLE_FORMAT": "parquet"})
    users, scores = settings.table_path("users"), settings.table_path("churn_scores") / "as_of_date=2018-11-26"
    for folder in (users, scores):
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"committed")
    (users / "_SUCCESS").touch()
    return sorted(p for p in home.rglob("*") if p.is_file())


def test_a_lakehouse_of_the_other_format_is_refused_before_anything_is_removed(tmp_path):
    """Read as Delta, every table of a Parquet lakehouse lacks a Delta commit and would look like debris."""
    from sparkify.spark import remove_uncommitted_tables

    files = parquet_lakehouse(tmp_path)
    as_delta = cfg.load({"SPARKIFY_HOME": str(tmp_path), "SPARKIFY_TABLE_FORMAT": "delta"})
    with pytest.raises(cfg.SettingsError, match=f"The lakehouse at {tmp_path} holds parquet tables"):
        remove_uncommitted_tables(as_delta)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == files


def test_training_on_a_lakehouse_of_the_other_format_stops_with_the_reason_and_keeps_its_tables(tmp_path):
    import subprocess
    import sys

    files = parquet_lakehouse(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DBT_"))}
    env.update(SPARKIFY_HOME=str(tmp_path), SPARKIFY_TABLE_FORMAT="delta")
    result = subprocess.run([sys.executable, "-m", "models_ml.train", "--quick"], cwd=cfg.PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "holds parquet tables" in result.stderr and "SPARKIFY_TABLE_FORMAT to match" in result.stderr
    assert "removed" not in result.stdout + result.stderr
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.name != "metastore.lock") == files


def test_only_data_files_are_read_and_corrupt_gzip_files_are_rejected_with_their_readable_lines(tmp_path):
    import json

    from sparkify import raw_files

    raw = tmp_path / "raw"
    raw.mkdir()
    lines = [json.dumps({"ts": i, "userId": str(i)}) for i in range(5000)]
    (raw / "day one [x] 100%.json").write_text("\n".join(lines[:10]) + "\n")
    (raw / "no-newline-at-end.json").write_text("\n".join(lines[:3]))
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    (raw / "sound.json.gz").write_bytes(whole)
    (raw / "truncated.json.gz").write_bytes(whole[: len(whole) // 2])
    (raw / "garbage.json.gz").write_bytes(b"this is not gzip")
    for not_data in ("events.json.swp", "events.json.gz.partial", "events.json.bak", ".hidden.json", "_x.json"):
        (raw / not_data).write_text(lines[0] + "\n")
    # The lines of the truncated file that decompress, counted here with zlib rather than raw_files' gzip.
    got = __import__("zlib").decompressobj(wbits=31).decompress(whole[: len(whole) // 2])
    checked = {os.path.basename(f.path): f for f in raw_files.check(cfg.events_glob(str(raw)), tmp_path)}
    assert sorted(checked) == ["day one [x] 100%.json", "garbage.json.gz", "no-newline-at-end.json",
                               "sound.json.gz", "truncated.json.gz"]
    assert checked["day one [x] 100%.json"].lines == 10 and checked["day one [x] 100%.json"].reason is None
    assert checked["no-newline-at-end.json"].lines == 3
    assert checked["sound.json.gz"].lines == 5000 and checked["sound.json.gz"].reason is None
    assert checked["truncated.json.gz"].lines == got.count(b"\n") < 5000
    assert checked["truncated.json.gz"].reason.startswith("truncated gzip file")
    assert checked["garbage.json.gz"].reason.startswith("corrupt gzip file")
    # Replacing the file is the fix: the next check sees the new size and mtime.
    (raw / "truncated.json.gz").write_bytes(whole)
    again = {os.path.basename(f.path): f for f in raw_files.check(cfg.events_glob(str(raw)), tmp_path)}
    assert again["truncated.json.gz"].reason is None and again["truncated.json.gz"].lines == 5000


def test_the_raw_files_record_has_the_columns_the_dbt_models_read():
    import dataclasses
    import re

    from sparkify.raw_files import RawFile

    macro = (cfg.PROJECT_ROOT / "dbt_project/macros/raw_events.sql").read_text()
    schema = re.search(r"macro raw_files_schema\(\) -%}\s*(.*?)\s*{%- endmacro", macro, re.S).group(1)
    assert [column.split()[0] for column in schema.split(",")] == [f.name for f in dataclasses.fields(RawFile)]
