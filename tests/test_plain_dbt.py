"""A plain `dbt` from the project's venv acts like `make build`: the same settings, tables and guards.

Each command runs as its own process, the way an analytics engineer types it: the venv's `bin` first
on PATH (what `source .venv/bin/activate` does), only SPARKIFY_HOME and SPARKIFY_EVENTS exported,
none of the variables sparkify/dbt.py derives. The input is the first lines of the fixture's base file.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import delta_rows
from sparkify import settings as cfg
from sparkify.spark import metastore_lock

pytestmark = [pytest.mark.delta, pytest.mark.spark, pytest.mark.slow]

VENV_BIN = Path(sys.executable).parent
SELECT = ["--select", "+sessions", "--indirect-selection", "cautious"]
FIXTURE_LINES = 20_000


def user_env(home: Path, events: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: nothing from this test session's own SPARKIFY_*/DBT_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DBT_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    return {**env, "SPARKIFY_HOME": str(home), "SPARKIFY_EVENTS": str(events), **extra}


def run(command: list[str], env: dict[str, str], cwd: Path = cfg.PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def raw_dir(fixture_files, tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("plain-dbt-raw")
    with gzip.open(fixture_files.base_file, "rt", encoding="utf-8") as source:
        lines = [next(source) for _ in range(FIXTURE_LINES)]
    (raw / "events.json").write_text("".join(lines), encoding="utf-8")
    return raw


@pytest.fixture(scope="module")
def plain_build(raw_dir, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """A plain `dbt build` of the selection, started from a sub-folder, and dbt's own list of what it selects."""
    by_dbt = tmp_path_factory.mktemp("plain-dbt") / "dbt-home"
    plain = run(["dbt", "build", *SELECT], user_env(by_dbt, raw_dir), cwd=cfg.PROJECT_ROOT / "dbt_project")
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
    listed = run(["dbt", "ls", *SELECT, "--resource-type", "model", "seed", "--output", "json",
                  "--output-keys", "name", "config"], user_env(by_dbt, raw_dir))
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    return by_dbt, plain, listed


def tables(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "warehouse" / f"{cfg.SCHEMA}.db").iterdir() if p.is_dir())


def test_plain_dbt_build_writes_every_table_it_selects(plain_build, raw_dir):
    import json

    by_dbt, _, listed = plain_build
    nodes = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
    # every selected seed and model but the views has a folder in the warehouse
    assert tables(by_dbt) == sorted(n["name"] for n in nodes if n["config"]["materialized"] != "view")
    assert {"bronze_events", "stg_sparkify__events", "sessions"} <= set(tables(by_dbt))
    bronze = delta_rows(by_dbt / "warehouse/sparkify.db/bronze_events")
    assert bronze["line_count"].sum() == FIXTURE_LINES  # every raw line, counted independently
    assert len(delta_rows(by_dbt / "warehouse/sparkify.db/sessions")) == session_count(raw_dir, 30)


def test_plain_dbt_resolves_the_settings_of_make_build(plain_build):
    by_dbt, plain, _ = plain_build
    assert "sparkify: table format delta" in plain.stderr
    assert (by_dbt / "table_format").read_text().strip() == "delta"
    assert (by_dbt / "dbt" / "target" / "manifest.json").is_file()  # DBT_TARGET_PATH under the home
    assert (by_dbt / "logs" / "dbt.log").is_file()
    assert not (cfg.PROJECT_ROOT / "dbt_project" / "target").exists()


def test_plain_dbt_refuses_to_switch_the_table_format(plain_build, raw_dir):
    by_dbt, _, _ = plain_build
    before = delta_rows(by_dbt / "warehouse/sparkify.db/sessions")
    result = run(["dbt", "build"], user_env(by_dbt, raw_dir, SPARKIFY_TABLE_FORMAT="parquet"))
    assert result.returncode == 2
    assert f"The lakehouse at {by_dbt} holds delta tables" in result.stderr
    assert "SPARKIFY_TABLE_FORMAT=parquet" in result.stderr and "make clean build" in result.stderr
    pd.testing.assert_frame_equal(delta_rows(by_dbt / "warehouse/sparkify.db/sessions"), before)


def test_plain_dbt_stops_at_once_when_the_lakehouse_is_in_use(plain_build, raw_dir):
    by_dbt, _, _ = plain_build
    with metastore_lock(by_dbt):
        result = run(["dbt", "build"], user_env(by_dbt, raw_dir))
    assert result.returncode == 2
    assert f"The lakehouse at {by_dbt} is in use by pid {os.getpid()}" in result.stderr
    assert "XSDB6" not in result.stdout + result.stderr
    assert "Running with dbt" not in result.stdout  # stopped before dbt started


def test_plain_dbt_names_a_missing_events_path(tmp_path):
    missing = tmp_path / "no-such-folder"
    result = run(["dbt", "build"], user_env(tmp_path / "home", missing))
    assert result.returncode == 2
    assert f"SPARKIFY_EVENTS={missing}: no such file, directory or glob match" in result.stderr


def test_dbt_started_outside_the_venv_hook_is_stopped_before_any_model(plain_build, raw_dir, tmp_path):
    """A dbt that bypasses the start-up hook, with the profile's variables exported by hand."""
    home = tmp_path / "home"
    settings = cfg.load(user_env(home, raw_dir))
    env = {**user_env(home, raw_dir), **settings.profile_env()}
    code = "import sys; from dbt.cli.main import cli; sys.argv = ['dbt', 'build']; cli()"
    result = run([sys.executable, "-c", code], env)
    assert result.returncode != 0
    assert "was not started through the project's environment" in result.stdout
    warehouse = home / "warehouse" / f"{cfg.SCHEMA}.db"
    assert not warehouse.exists() or not any(warehouse.iterdir())


def test_dbt_docs_generate_catalogs_the_built_tables(plain_build, raw_dir):
    import json

    by_dbt, _, _ = plain_build
    result = run(["dbt", "docs", "generate"], user_env(by_dbt, raw_dir))
    assert result.returncode == 0, result.stdout[-3000:]
    catalog = json.loads((by_dbt / "dbt" / "target" / "catalog.json").read_text())
    sessions = catalog["nodes"]["model.sparkify.sessions"]["columns"]
    from deltalake import DeltaTable

    table = DeltaTable(str(by_dbt / "warehouse/sparkify.db/sessions"))
    assert set(sessions) == {field.name for field in table.schema().fields}


# What an incremental model says when its definition changed (dbt_project/macros/incremental.sql).
REBUILT = "its definition changed since the table was built"


def session_count(raw_dir: Path, gap_minutes: int) -> int:
    """Sessions of the logged-in users' distinct events, split after `gap_minutes` idle: pandas, not Spark."""
    frame = pd.read_json(raw_dir / "events.json", lines=True, dtype={"userId": str})
    frame = frame[frame["userId"] != ""].drop_duplicates()
    frame = frame.sort_values(["userId", "sessionId", "ts", "itemInSession"])
    gap_ms = frame.groupby(["userId", "sessionId"])["ts"].diff()
    return int((gap_ms.isna() | (gap_ms // 1000 > gap_minutes * 60)).sum())


def test_a_changed_var_rebuilds_the_models_downstream_and_then_skips_them(plain_build, raw_dir):
    by_dbt, _, _ = plain_build
    sessions = by_dbt / "warehouse/sparkify.db/sessions"
    assert not (delta_rows(by_dbt / "warehouse/sparkify.db/bronze_events")["record_status"] == "quarantined").any()
    assert session_count(raw_dir, 1) != session_count(raw_dir, 30)
    assert len(delta_rows(sessions)) == session_count(raw_dir, 30)
    command = ["dbt", "build", *SELECT, "--vars", "{session_gap_minutes: 1}"]
    changed = run(command, user_env(by_dbt, raw_dir))
    assert changed.returncode == 0, changed.stdout[-3000:]
    # int_events_sessionized reads the var; sessions only reads int_events_sessionized.
    assert f"int_events_sessionized: {REBUILT}" in changed.stdout
    assert f"sessions: {REBUILT}" in changed.stdout
    assert len(delta_rows(sessions)) == session_count(raw_dir, 1)
    again = run(command, user_env(by_dbt, raw_dir))
    assert again.returncode == 0, again.stdout[-3000:]
    assert REBUILT not in again.stdout
    assert len(delta_rows(sessions)) == session_count(raw_dir, 1)


def test_a_changed_seed_rebuilds_the_models_that_read_it(plain_build, raw_dir, tmp_path):
    import shutil

    from deltalake import DeltaTable

    by_dbt, _, _ = plain_build
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(cfg.PROJECT_ROOT / "dbt_project.yml", project)
    shutil.copytree(cfg.PROJECT_ROOT / "dbt_project", project / "dbt_project")
    seed = project / "dbt_project" / "seeds" / "sparkify_pages.csv"
    seed.write_text(seed.read_text().replace("Rates the current song positively", "Likes the song"))
    sessions = by_dbt / "warehouse/sparkify.db/sessions"
    version = DeltaTable(str(sessions)).version()
    command = ["dbt", "build", "-s", "sparkify_pages", "sessions", "--indirect-selection", "cautious",
               "--vars", "{session_gap_minutes: 1}"]
    result = run(command, user_env(by_dbt, raw_dir, DBT_PROJECT_DIR=str(project)))
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"sessions: {REBUILT}" in result.stdout
    assert DeltaTable(str(sessions)).version() > version
