"""The no-change build (sparkify/build_state.py): a `make build` is skipped only when every input is as the
last successful build left it. No JVM: the state is files and settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sparkify import build_state
from sparkify import settings as cfg

ARGS = ["build", "--exclude-resource-type", "unit_test"]


@pytest.fixture
def lakehouse(tmp_path, monkeypatch):
    """A home with one Parquet table file and a checked raw file, and a project of two files."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "events.json").write_text('{"ts": 1}\n')
    home = tmp_path / "home"
    table = home / "warehouse" / "sparkify.db" / "users"
    table.mkdir(parents=True)
    (table / "part-0.parquet").write_bytes(b"rows")
    (home / cfg.RAW_FILES_NAME).write_text(json.dumps({"path": str(raw / "events.json"), "size": 10}) + "\n")
    (home / "table_format").write_text("parquet\n")
    project = tmp_path / "project"
    (project / "dbt_project" / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("vars: {churn_horizon_days: 14}\n")
    (project / "dbt_project" / "models" / "users.sql").write_text("select 1 as user_id\n")
    for name in [n for n in os.environ if n.startswith(("SPARKIFY_", "DBT_"))]:
        monkeypatch.delenv(name)
    settings = cfg.load({"SPARKIFY_HOME": str(home), "SPARKIFY_EVENTS": str(raw), "SPARKIFY_TABLE_FORMAT": "parquet"})
    return settings, project, table


DIGEST = build_state.digest


def state(settings, project, args=ARGS, env=None) -> str:
    return DIGEST(settings, args, project_root=project, env=env or {})


def on_project(monkeypatch, project: Path) -> None:
    """Let up_to_date and record see the test's project and no environment."""
    monkeypatch.setattr(build_state, "digest", lambda s, a: state(s, project, a))


def test_the_same_inputs_give_the_same_state(lakehouse):
    settings, project, _ = lakehouse
    assert state(settings, project) == state(settings, project)


@pytest.mark.parametrize("change", ["table file rewritten", "table file added", "table dropped",
                                    "raw file checked anew", "model edited", "var changed", "format marker"])
def test_any_changed_input_changes_the_state(lakehouse, change):
    settings, project, table = lakehouse
    before = state(settings, project)
    if change == "table file rewritten":
        (table / "part-0.parquet").write_bytes(b"other rows")
    elif change == "table file added":
        (table / "part-1.parquet").write_bytes(b"rows")
    elif change == "table dropped":
        for path in table.iterdir():
            path.unlink()
        table.rmdir()
    elif change == "raw file checked anew":
        (settings.home / cfg.RAW_FILES_NAME).write_text(json.dumps({"path": "events.json", "size": 11}) + "\n")
    elif change == "model edited":
        (project / "dbt_project" / "models" / "users.sql").write_text("select 2 as user_id\n")
    elif change == "var changed":
        (project / "dbt_project.yml").write_text("vars: {churn_horizon_days: 7}\n")
    elif change == "format marker":
        (settings.home / "table_format").write_text("delta\n")
    assert state(settings, project) != before


def test_other_arguments_and_settings_are_another_build(lakehouse):
    settings, project, _ = lakehouse
    before = state(settings, project)
    assert state(settings, project, args=[*ARGS, "--vars", "{churn_horizon_days: 7}"]) != before
    assert state(settings, project, env={"SPARKIFY_SHUFFLE_PARTITIONS": "8"}) != before
    other = cfg.load({"SPARKIFY_HOME": str(settings.home), "SPARKIFY_EVENTS": settings.events,
                      "SPARKIFY_TABLE_FORMAT": "parquet", "SPARKIFY_DRIVER_MEMORY": "8g"})
    assert state(other, project) != before
    # the process's own marker is not part of a build
    assert state(settings, project, env={"SPARKIFY_PREPARED": "123"}) == before


def test_a_recorded_build_is_up_to_date_until_it_is_forgotten_or_an_input_changes(lakehouse, monkeypatch):
    settings, project, table = lakehouse
    on_project(monkeypatch, project)
    assert build_state.up_to_date(settings, ARGS) is None  # nothing recorded yet
    build_state.record(settings, ARGS, "PASS=3 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=3")
    stored = build_state.up_to_date(settings, ARGS)
    assert stored["summary"] == "PASS=3 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=3"
    assert stored["finished_at"] in build_state.describe(stored)
    assert build_state.up_to_date(settings, [*ARGS, "--select", "users"]) is None

    (table / "part-1.parquet").write_bytes(b"rows")  # e.g. the ML script appended
    assert build_state.up_to_date(settings, ARGS) is None
    build_state.record(settings, ARGS, "PASS=3")
    assert build_state.up_to_date(settings, ARGS) is not None
    build_state.forget(settings.home)  # a plain dbt command that may write
    assert build_state.up_to_date(settings, ARGS) is None


def test_a_full_refresh_and_the_cluster_target_always_build(lakehouse, monkeypatch):
    settings, project, _ = lakehouse
    on_project(monkeypatch, project)
    build_state.record(settings, [*ARGS, "--full-refresh"], "PASS=3")
    assert build_state.up_to_date(settings, [*ARGS, "--full-refresh"]) is None
    cluster = cfg.load({"SPARKIFY_HOME": str(settings.home), "SPARKIFY_EVENTS": settings.events,
                        "SPARKIFY_TABLE_FORMAT": "parquet", "SPARKIFY_TARGET": "cluster"})
    build_state.record(cluster, ARGS, "PASS=3")
    assert build_state.up_to_date(cluster, ARGS) is None


def test_a_build_leaves_out_the_seeds_the_last_build_loaded_from_the_same_file(lakehouse, monkeypatch):
    settings, project, _ = lakehouse
    on_project(monkeypatch, project)
    seed = project / build_state.SEEDS / "pages.csv"
    seed.parent.mkdir(parents=True)
    seed.write_text("page,category\nHome,navigation\n")
    table = settings.table_path("pages")
    table.mkdir(parents=True)
    (table / "part-0.parquet").write_bytes(b"rows")
    (settings.home / "metastore_db").mkdir()
    checksums = build_state.seed_checksums(project)
    assert list(checksums) == ["pages"]

    def left_out(args=ARGS):
        return build_state.loaded_seeds(settings, args, build_state.seed_checksums(project))

    assert left_out() == []  # no build recorded yet
    build_state.record(settings, ARGS, "PASS=1", build_state.seeds_in_tables(ARGS, [], checksums))
    assert left_out() == ["pages"]
    assert left_out([*ARGS, "--full-refresh"]) == []

    seed.write_text("page,category\nHome,navigation\nAbout,navigation\n")  # the file changed
    assert left_out() == []
    build_state.record(settings, ARGS, "PASS=1", build_state.seeds_in_tables(ARGS, [], build_state.seed_checksums(project)))
    assert left_out() == ["pages"]
    (settings.home / "metastore_db").rmdir()  # the metastore lost: the table must be registered again
    assert left_out() == []
    (settings.home / "metastore_db").mkdir()
    (table / "part-0.parquet").unlink()  # the table emptied by a cleanup
    assert left_out() == []


def test_a_build_of_a_selection_vouches_only_for_the_seeds_it_left_out():
    checksums = {"pages": "a1", "offers": "b2"}
    assert build_state.seeds_in_tables(ARGS, [], checksums) == checksums
    assert build_state.seeds_in_tables([*ARGS, "--exclude", "pages"], ["pages"], checksums) == checksums
    assert build_state.seeds_in_tables([*ARGS, "--select", "users"], [], checksums) == {}
    assert build_state.seeds_in_tables([*ARGS, "--select", "users", "--exclude", "pages"], ["pages"],
                                       checksums) == {"pages": "a1"}


def test_the_real_project_files_are_part_of_the_state():
    names = {str(p.relative_to(cfg.PROJECT_ROOT)) for entry in build_state.PROJECT_INPUTS
             for p in build_state._files(cfg.PROJECT_ROOT / entry)}
    assert {"dbt_project.yml", "dbt_project/models/marts/user_features.sql", "profiles/profiles.yml",
            "sparkify/raw_files.py"} <= names
    assert not any("__pycache__" in n for n in names)


def test_dbt_summary_counts_statuses_as_dbt_prints_them():
    from types import SimpleNamespace

    from sparkify.dbt import summary

    def run(*statuses):
        return SimpleNamespace(result=SimpleNamespace(results=[SimpleNamespace(status=s) for s in statuses]))

    assert summary(run("success", "pass", "no-op"), run("warn", "pass")) == \
        "PASS=3 WARN=1 ERROR=0 SKIP=0 NO-OP=1 TOTAL=5"
    assert summary(run("error", "fail", "skipped")) == "PASS=0 WARN=0 ERROR=2 SKIP=1 NO-OP=0 TOTAL=3"
